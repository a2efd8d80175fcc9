package grid

import (
	"context"
	"fmt"

	"github.com/wasmgrid/wasmgrid/internal/executor"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/planner"
	"github.com/wasmgrid/wasmgrid/wasmexec"
)

// JobRequest is a job to run on an embedded grid: a validated spec and
// the bytes of its modules, which Submit writes to the grid's module
// directory before anything else reads them.
type JobRequest struct {
	Spec    *jobspec.Spec
	Modules map[string][]byte // by the spec's module name
	// Tenant owns the job and shares the cluster under its weight and
	// quota; empty means "default".
	Tenant string
}

// admission is a job on its way in: its spec, its tenant and its modules,
// which travel by hash and file, never as bytes.
type admission struct {
	Spec    *jobspec.Spec
	Modules map[string]moduleBlob // by the spec's module name
	Tenant  string
	// limits bound the spec, checked before anything is planned.
	limits LimitsConfig
	// Grants are the volumes the job may read and write; nil until admit
	// sets the grid's for the tenant.
	Grants *storage.Grants
}

func (r *admission) tenant() string {
	if r.Tenant == "" {
		return "default"
	}
	return r.Tenant
}

// grants are the job's volumes (none before admit sets them).
func (r *admission) grants() storage.Grants {
	if r.Grants == nil {
		return storage.Grants{Tenant: r.tenant()}
	}
	return *r.Grants
}

// stepKinds says which guest function kind each operator needs.
var stepKinds = map[planner.Op]string{
	planner.OpMap:           "map",
	planner.OpFlatMap:       "flat_map",
	planner.OpFilter:        "filter",
	planner.OpMapValues:     "map",
	planner.OpKeyBy:         "map",
	planner.OpMapPartitions: "flat_map",
	planner.OpReduceByKey:   "reduce",
}

// prepare checks a request against its modules' manifests and the input
// files and builds the plan: everything that can fail before a task runs.
func prepare(ctx context.Context, insp *inspector, req admission, defaultPartitions int, st *storage.Cache) (planner.Job, map[string]moduleBlob, map[string]storage.Volume, error) {
	spec := req.Spec
	if err := checkSpecLimits(spec, req.limits); err != nil {
		return planner.Job{}, nil, nil, err
	}
	blobs := map[string]moduleBlob{}
	mods := map[string]*executor.ModuleInfo{}
	for _, m := range spec.Modules {
		blob, ok := req.Modules[m.Name]
		if !ok {
			return planner.Job{}, nil, nil, fmt.Errorf("%s:%d: module %s has no bytes", spec.File, m.Line, m.Name)
		}
		blob.Name = m.Name
		info, err := insp.describe(ctx, blob, uint64(spec.Conf.TaskMemory))
		if err != nil {
			return planner.Job{}, nil, nil, fmt.Errorf("%s:%d: modules.%s: %w", spec.Display(), m.Line, m.Name, err)
		}
		mods[m.Name] = info
		blobs[m.Name] = blob
	}
	check := func(st jobspec.Step) error {
		mod := mods[st.Module]
		if mod == nil {
			return fmt.Errorf("%s:%d: step %s names module %q, which the spec does not define", spec.Display(), st.Line, st.Op, st.Module)
		}
		fn, err := wasmexec.FindFunction(mod.Functions, st.Function)
		if err != nil {
			return fmt.Errorf("%s:%d: %s = \"%s.%s\": module %s: %v", spec.Display(), st.Line, st.Op, st.Module, st.Function, st.Module, err)
		}
		if want := stepKinds[st.Op]; fn.Kind != want {
			return fmt.Errorf("%s:%d: %s = \"%s.%s\": %s is a %s function; %s needs a %s function", spec.Display(), st.Line, st.Op, st.Module, st.Function, st.Function, fn.Kind, st.Op, want)
		}
		return nil
	}
	in := &storage.Finder{Ctx: ctx, Grants: req.grants(), Stores: st, Used: map[string]storage.Volume{}}
	job, err := spec.Lower(jobspec.Lowering{Slots: defaultPartitions, Inputs: in, MaxSplits: req.limits.Splits, Check: check})
	if err != nil {
		return planner.Job{}, nil, nil, err
	}
	// The core builds the plan from the logical job again; a job whose
	// plan does not build is refused here, with its reason.
	if _, err := planner.Build(*job); err != nil {
		return planner.Job{}, nil, nil, err
	}
	return *job, blobs, in.Used, nil
}

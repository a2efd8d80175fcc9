package grid

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/wasmgrid/wasmgrid/internal/storage"
)

// LocalVolume is the volume of the embedded grid (grid run) and of the
// one-machine cluster (grid up): the local user's own files.
const LocalVolume = storage.LocalVolume

// localGrants gives tenant the whole file system of this machine.
var localGrants = storage.LocalGrants

// grantsFor builds each tenant's grants from a config's volumes and the
// tenants' grants tables, checking that every granted volume exists.
func grantsFor(volumes []storage.Volume, tenants []TenantConfig) (map[string]storage.Grants, error) {
	byName := map[string]storage.Volume{}
	for _, v := range volumes {
		byName[v.Name] = v
	}
	out := map[string]storage.Grants{}
	var errs []error
	for _, t := range tenants {
		g := storage.Grants{Tenant: t.Name, ByName: map[string]storage.Grant{}}
		for _, name := range slices.Sorted(maps.Keys(t.Grants)) {
			v, ok := byName[name]
			if !ok {
				errs = append(errs, fmt.Errorf("tenant %q is granted volume %q, which no [[volumes]] defines", t.Name, name))
				continue
			}
			a, err := storage.ParseAccess(t.Grants[name])
			if err != nil {
				errs = append(errs, fmt.Errorf("tenant %q, volume %q: %w", t.Name, name, err))
				continue
			}
			g.ByName[name] = storage.Grant{Volume: v, Access: a}
		}
		out[t.Name] = g
	}
	return out, errors.Join(errs...)
}

// validateVolumes checks a config's volume definitions.
func validateVolumes(volumes []storage.Volume) []error {
	var errs []error
	seen := map[string]bool{}
	for _, v := range volumes {
		if err := v.Validate(); err != nil {
			errs = append(errs, err)
		}
		if strings.HasPrefix(v.Name, "grid.") {
			errs = append(errs, fmt.Errorf("volume %q: names that start with \"grid.\" are the grid's own", v.Name))
		}
		if seen[v.Name] {
			errs = append(errs, fmt.Errorf("volume %q is defined twice", v.Name))
		}
		seen[v.Name] = true
	}
	return errs
}

// exposed lists the volumes that hold one of paths (the node's state
// directory, its keys): a tenant granted one could read them. The operator
// is warned.
func exposed(volumes []storage.Volume, paths ...string) []string {
	var out []string
	for _, v := range volumes {
		if v.Scheme() != "file" {
			continue
		}
		for _, p := range paths {
			if p == "" {
				continue
			}
			abs, err := filepath.Abs(p)
			if err != nil {
				continue
			}
			if rel, err := filepath.Rel(v.Root(), abs); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
				out = append(out, fmt.Sprintf("volume %s (%s) holds %s", v.Name, v.URL, abs))
			}
		}
	}
	return out
}

// outputs are the output directories that running jobs write: two jobs
// never write one at once (each would remove the other's staging area).
type outputs struct {
	mu   sync.Mutex        // protects jobs
	jobs map[string]string // volume:dir -> job
}

// reserve claims out for job, or says which job holds it.
func (o *outputs) reserve(out, job string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if other, ok := o.jobs[out]; ok {
		return fmt.Errorf("output %s is being written by another job (%s): wait for it to end, or choose another directory", out, other)
	}
	if o.jobs == nil {
		o.jobs = map[string]string{}
	}
	o.jobs[out] = job
	return nil
}

func (o *outputs) release(out string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.jobs, out)
}

// resultsVolumeName names the results volume; config volumes cannot
// take a "grid." name.
const resultsVolumeName = "grid.results"

// resultsVolume is where a coordinator keeps the results of jobs that
// print them (a stdout sink) until they are read: no tenant is granted it.
func resultsVolume(stateDir string) (storage.Volume, error) {
	dir, err := filepath.Abs(filepath.Join(stateDir, "results"))
	if err != nil {
		return storage.Volume{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return storage.Volume{}, err
	}
	return storage.Volume{Name: resultsVolumeName, URL: "file://" + dir}, nil
}

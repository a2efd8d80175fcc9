package wasmexec

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/wasmgrid/wasmgrid/internal/batch"
)

// Step is one guest function of a task's pipeline.
type Step struct {
	Name     string // the module's name in the job, for errors
	Module   *Module
	Function Function
	// Keep, for a map function, keeps a part of each input record: "key"
	// (map_values: the record takes the value the function returns) or
	// "value" (key_by: it takes the key the function returns). The host
	// does it, so the step runs in a guest call of its own.
	Keep string
}

// Pipeline pushes batches through a chain of map, flat_map and filter
// functions. Consecutive functions of one module run inside one guest call
// (the guest chains them record by record); the host only carries batches
// from one module to the next. It owns one Instance per distinct module.
type Pipeline struct {
	segments  []segment
	instances []*Instance
}

type segment struct {
	inst  *Instance
	funcs []uint32
	label string
	keep  string // Step.Keep of its one function
	in    []byte // for keep: a copy of the input batch
	buf   []byte // for keep: the output batch rebuilt
}

// NewPipeline instantiates the modules of steps for one task. Steps must not
// contain reduce functions: use a Reducer for those.
func (r *Runtime) NewPipeline(ctx context.Context, steps []Step, lim Limits) (*Pipeline, error) {
	p := &Pipeline{}
	byModule := map[*Module]*Instance{}
	for _, s := range steps {
		if s.Function.Kind == "reduce" {
			return nil, fmt.Errorf("wasmexec: reduce function %s in a pipeline", s.Function.Name)
		}
		if s.Keep != "" && s.Function.Kind != "map" {
			return nil, fmt.Errorf("wasmexec: %s is a %s function; keeping a record's %s needs a map function", s.Function.Name, s.Function.Kind, s.Keep)
		}
		if n := len(p.segments); n > 0 && p.segments[n-1].inst == byModule[s.Module] && p.segments[n-1].keep == "" && s.Keep == "" {
			seg := &p.segments[n-1]
			seg.funcs = append(seg.funcs, s.Function.Index)
			seg.label += "|" + s.Function.Name
			continue
		}
		inst := byModule[s.Module]
		if inst == nil {
			var err error
			inst, err = r.Instantiate(ctx, s.Module, s.Name, lim)
			if err != nil {
				p.Close(ctx)
				return nil, err
			}
			byModule[s.Module] = inst
			p.instances = append(p.instances, inst)
		}
		p.segments = append(p.segments, segment{inst: inst, funcs: []uint32{s.Function.Index}, label: s.Function.Name, keep: s.Keep})
	}
	return p, nil
}

// Push runs one batch through the pipeline and hands the output batch to
// emit, which must not keep it after it returns. An empty pipeline passes
// batches through.
func (p *Pipeline) Push(ctx context.Context, b []byte, emit func(batch []byte) error) error {
	for i := range p.segments {
		s := &p.segments[i]
		if s.keep != "" {
			// b may be the output of the instance's last call, which
			// this call overwrites: keep a copy to take keys or values
			// from.
			s.in = append(s.in[:0], b...)
			b = s.in
		}
		out, err := s.inst.Call(ctx, s.funcs, s.label, b)
		if err != nil {
			return err
		}
		if s.keep != "" {
			if out, err = s.rekey(b, out); err != nil {
				return err
			}
		}
		b = out
	}
	return emit(b)
}

// rekey rebuilds a map function's output batch with each input record's
// key (keep "key") or value (keep "value"): a map returns exactly one
// record per input record, in order.
func (s *segment) rekey(in, out []byte) ([]byte, error) {
	if n, m := batch.Count(in), batch.Count(out); n != m {
		return nil, &Error{Module: s.inst.label, Function: s.label, Kind: KindInvalid, Msg: fmt.Sprintf("the map function returned %d records for %d: a map returns exactly one record per record", m, n)}
	}
	s.buf = append(s.buf[:0], out[:4]...)
	a, b := batch.Checked(in), batch.Checked(out)
	for a.Next() && b.Next() {
		if s.keep == "key" {
			s.buf = batch.AppendRecord(s.buf, a.Key(), b.Value())
		} else {
			s.buf = batch.AppendRecord(s.buf, b.Key(), a.Value())
		}
	}
	return s.buf, nil
}

// Log is the tail of what the pipeline's guests wrote to stdout and stderr.
func (p *Pipeline) Log() string {
	var b strings.Builder
	for _, inst := range p.instances {
		b.WriteString(inst.Stderr())
	}
	return b.String()
}

// Close releases the pipeline's instances.
func (p *Pipeline) Close(ctx context.Context) error {
	var errs []error
	for _, inst := range p.instances {
		errs = append(errs, inst.Close(ctx))
	}
	return errors.Join(errs...)
}

// Reducer folds records grouped by key with a reduce function, across as
// many calls as the input takes: the last run of each call may continue in
// the next, so its folded record is carried into the next call instead of
// being emitted (docs/abi.md, "A call").
type Reducer struct {
	inst  *Instance
	owned bool
	fn    []uint32
	label string
	carry []byte // one encoded record, or empty
	out   []byte
}

// NewReducer instantiates step's module for a reduce.
func (r *Runtime) NewReducer(ctx context.Context, step Step, lim Limits) (*Reducer, error) {
	if step.Function.Kind != "reduce" {
		return nil, fmt.Errorf("wasmexec: %s is a %s function, not reduce", step.Function.Name, step.Function.Kind)
	}
	inst, err := r.Instantiate(ctx, step.Module, step.Name, lim)
	if err != nil {
		return nil, err
	}
	return &Reducer{inst: inst, owned: true, fn: []uint32{step.Function.Index}, label: step.Function.Name}, nil
}

// Combine folds one batch on its own: every run in it is complete. It is
// the map-side combiner's call. The result is valid until the next call.
func (rd *Reducer) Combine(ctx context.Context, b []byte) ([]byte, error) {
	return rd.inst.Call(ctx, rd.fn, rd.label, b)
}

// Reduce folds a batch of records grouped by key, continuing the run carried
// from the previous call, and returns the records whose runs are complete.
// The returned batch is valid until the next call.
func (rd *Reducer) Reduce(ctx context.Context, b []byte) ([]byte, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("wasmexec: reduce of a %d-byte batch", len(b))
	}
	count := batch.Count(b)
	if count == 0 {
		return emptyBatch[:], nil
	}
	var out []byte
	var err error
	if len(rd.carry) > 0 {
		out, err = rd.inst.invoke(ctx, rd.fn, rd.label, count+1, rd.carry, b[4:])
	} else {
		out, err = rd.inst.invoke(ctx, rd.fn, rd.label, count, b[4:])
	}
	if err != nil {
		return nil, err
	}
	n, last, _ := batch.Scan(out) // invoke checked it
	if n == 0 {
		return nil, &Error{Module: rd.inst.label, Function: rd.label, Kind: KindInvalid, Msg: "reduce returned no records for a non-empty batch"}
	}
	rd.carry = append(rd.carry[:0], out[last:]...)
	// out is a view of guest memory that the next call overwrites anyway:
	// cut the carried record off in place rather than copy the rest.
	binary.LittleEndian.PutUint32(out, n-1)
	return out[:last], nil
}

// Flush returns the carried record as a batch of zero or one records, and
// forgets it.
func (rd *Reducer) Flush() []byte {
	rd.out = binary.LittleEndian.AppendUint32(rd.out[:0], 0)
	if len(rd.carry) > 0 {
		binary.LittleEndian.PutUint32(rd.out, 1)
		rd.out = append(rd.out, rd.carry...)
		rd.carry = rd.carry[:0]
	}
	return rd.out
}

// Log is the tail of what the reducer's guest wrote to stdout and stderr.
func (rd *Reducer) Log() string { return rd.inst.Stderr() }

// Close releases the reducer's instance.
func (rd *Reducer) Close(ctx context.Context) error {
	if rd.owned {
		return rd.inst.Close(ctx)
	}
	return nil
}

var emptyBatch = [4]byte{}

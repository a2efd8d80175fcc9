package wasmexec

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
	"github.com/wasmgrid/wasmgrid/internal/batch"
)

// Limits bound one instance.
type Limits struct {
	// MemoryBytes caps the instance's linear memory; 0 means the wasm32
	// maximum of 4 GiB.
	MemoryBytes uint64
}

const (
	maxMemory  = 1 << 32
	stderrTail = 4 << 10
)

// Instance is one instantiation of a module for one task. It is not safe
// for concurrent use. After any failed call it refuses further calls.
type Instance struct {
	label  string
	mod    api.Module
	mem    *limitedMemory
	stderr *tailBuffer

	abiVersion, describe, alloc, run, output api.Function

	stack  [2]uint64
	header []byte
	failed error
}

// Instantiate creates a fresh instance of m for a task. name is the module's
// name in the job, for errors. The instance is sandboxed: no files, no
// environment, a fake clock and a seeded random source (wazero's defaults),
// and linear memory capped at lim.MemoryBytes.
func (r *Runtime) Instantiate(ctx context.Context, m *Module, name string, lim Limits) (*Instance, error) {
	return r.instantiate(ctx, m, fmt.Sprintf("%s (sha256 %s)", name, m.ShortHash()), lim)
}

func (r *Runtime) instantiate(ctx context.Context, m *Module, label string, lim Limits) (*Instance, error) {
	return r.instantiateWith(ctx, m, label, lim, nil, true)
}

// instantiateWith is instantiate with the module config edited by edit
// (if set); fromSnapshot starts the instance from m's snapshot, when it
// has one, instead of running its initialization.
func (r *Runtime) instantiateWith(ctx context.Context, m *Module, label string, lim Limits, edit func(wazero.ModuleConfig) wazero.ModuleConfig, fromSnapshot bool) (*Instance, error) {
	limit := lim.MemoryBytes
	if limit == 0 || limit > maxMemory {
		limit = maxMemory
	}
	if uint64(m.MemoryPages)*65536 > limit {
		return nil, &Error{Module: label, Kind: KindOutOfMemory, Msg: fmt.Sprintf(
			"the module's memory starts at %s; the task's limit is %s (raise task.memory)", mib(uint64(m.MemoryPages)*65536), mib(limit))}
	}
	inst := &Instance{
		label:  label,
		mem:    newLimitedMemory(limit, 0), // replaced by the allocator
		stderr: &tailBuffer{max: stderrTail},
	}
	var snap *snapshot
	if fromSnapshot {
		snap = m.snap.Load()
	}
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module may coexist
		WithStartFunctions("_initialize").
		WithStderr(inst.stderr).
		WithStdout(inst.stderr)
	if snap != nil {
		// The snapshot is the initialized state, and the clocks and random
		// stream go on from where the initialization left them.
		cfg = newFakeSources(snap.wallReads, snap.monoReads, snap.randBytes).config(cfg.WithStartFunctions())
	}
	if edit != nil {
		cfg = edit(cfg)
	}
	// The memory is made when wazero knows the module's maximum: the
	// allocator reserves that much address space, within the limit.
	actx := experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(
		func(_, max uint64) experimental.LinearMemory {
			inst.mem = newLimitedMemory(limit, max)
			return inst.mem
		}))
	mod, err := r.rt.InstantiateModule(actx, m.compiled, cfg)
	if err != nil {
		err = inst.guestError(ctx, "_initialize", err)
		// wazero frees the memory of a module whose start function
		// failed, but not of one that failed before (a data segment out
		// of bounds); Free is idempotent.
		inst.mem.Free()
		return nil, err
	}
	inst.mod = mod
	if snap != nil {
		if err := snap.restore(mod); err != nil {
			mod.Close(ctx)
			return nil, &Error{Module: label, Kind: KindOutOfMemory, Msg: err.Error()}
		}
	}
	inst.abiVersion = mod.ExportedFunction("wasmgrid_abi_version")
	inst.describe = mod.ExportedFunction("wasmgrid_describe")
	inst.alloc = mod.ExportedFunction("wasmgrid_alloc")
	inst.run = mod.ExportedFunction("wasmgrid_run")
	inst.output = mod.ExportedFunction("wasmgrid_output")
	return inst, nil
}

// Close releases the instance.
func (i *Instance) Close(ctx context.Context) error {
	if i.mod == nil {
		return nil
	}
	return i.mod.Close(ctx)
}

// Stderr returns the tail of what the guest wrote to stdout and stderr.
func (i *Instance) Stderr() string { return i.stderr.String() }

// Call runs one call of the guest ABI: batch (docs/abi.md encoding) pushed
// through the functions funcs, in order. fn names the chain for errors. The
// returned batch has been checked to be well formed; it lives in guest
// memory and is only valid until the next Call.
func (i *Instance) Call(ctx context.Context, funcs []uint32, fn string, batch []byte) ([]byte, error) {
	if len(batch) < 4 {
		return nil, fmt.Errorf("wasmexec: call of %s with a %d-byte batch", fn, len(batch))
	}
	return i.invoke(ctx, funcs, fn, binary.LittleEndian.Uint32(batch), batch[4:])
}

// invoke calls funcs on count records, given as the concatenation of parts
// (each a run of encoded records), without copying them on the host side.
func (i *Instance) invoke(ctx context.Context, funcs []uint32, fn string, count uint32, parts ...[]byte) ([]byte, error) {
	if i.failed != nil {
		return nil, i.failed
	}
	out, err := i.invoke1(ctx, funcs, fn, count, parts)
	if err != nil {
		i.failed = err
	}
	return out, err
}

func (i *Instance) invoke1(ctx context.Context, funcs []uint32, fn string, count uint32, parts [][]byte) ([]byte, error) {
	i.header = binary.LittleEndian.AppendUint32(i.header[:0], uint32(len(funcs)))
	for _, f := range funcs {
		i.header = binary.LittleEndian.AppendUint32(i.header, f)
	}
	i.header = binary.LittleEndian.AppendUint32(i.header, count)
	total := uint64(len(i.header))
	for _, p := range parts {
		total += uint64(len(p))
	}
	if total > 1<<31-1 {
		return nil, &Error{Module: i.label, Function: fn, Kind: KindInvalid, Msg: fmt.Sprintf("call of %d bytes is larger than 2 GiB", total)}
	}
	i.stack[0] = total
	if err := i.alloc.CallWithStack(ctx, i.stack[:]); err != nil {
		return nil, i.guestError(ctx, fn, err)
	}
	ptr := uint32(i.stack[0])
	if ptr == 0 {
		if i.mem.refused > 0 {
			return nil, i.guestError(ctx, fn, errors.New("out of memory"))
		}
		return nil, &Error{Module: i.label, Function: fn, Kind: KindInvalid, Msg: fmt.Sprintf("wasmgrid_alloc(%d) returned 0: the guest could not provide its input buffer", total)}
	}
	mem := i.mod.Memory()
	at := ptr
	for _, p := range append([][]byte{i.header}, parts...) {
		if !mem.Write(at, p) {
			return nil, &Error{Module: i.label, Function: fn, Kind: KindInvalid, Msg: fmt.Sprintf("wasmgrid_alloc(%d) returned %#x, outside the module's memory", total, ptr)}
		}
		at += uint32(len(p))
	}
	i.stack[0], i.stack[1] = uint64(ptr), total
	if err := i.run.CallWithStack(ctx, i.stack[:]); err != nil {
		return nil, i.guestError(ctx, fn, err)
	}
	status := uint32(i.stack[0])
	packed, err := i.call0(ctx, i.output)
	if err != nil {
		return nil, i.guestError(ctx, fn, err)
	}
	out, err := i.read(packed)
	if err != nil {
		return nil, &Error{Module: i.label, Function: fn, Kind: KindInvalid, Msg: "wasmgrid_output: " + err.Error()}
	}
	switch status {
	case 0:
	case 1:
		return nil, &Error{Module: i.label, Function: fn, Kind: KindGuestError, Msg: truncate(string(out), 2048), Stderr: i.stderr.String()}
	default:
		return nil, &Error{Module: i.label, Function: fn, Kind: KindInvalid, Msg: fmt.Sprintf("guest refused the call (status %d): %s", status, truncate(string(out), 2048))}
	}
	if err := CheckBatch(out); err != nil {
		return nil, &Error{Module: i.label, Function: fn, Kind: KindInvalid, Msg: "malformed output batch: " + err.Error()}
	}
	return out, nil
}

// call0 calls a function without parameters that returns one value.
func (i *Instance) call0(ctx context.Context, f api.Function) (uint64, error) {
	if err := f.CallWithStack(ctx, i.stack[:]); err != nil {
		return 0, err
	}
	return i.stack[0], nil
}

// read resolves a packed ptr<<32|len into a view of guest memory.
func (i *Instance) read(packed uint64) ([]byte, error) {
	ptr, n := uint32(packed>>32), uint32(packed)
	if n == 0 {
		return nil, nil
	}
	b, ok := i.mod.Memory().Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("range %#x+%d is outside the module's memory", ptr, n)
	}
	return b, nil
}

// guestError classifies a failure of a call into guest code.
func (i *Instance) guestError(ctx context.Context, fn string, err error) error {
	e := &Error{Module: i.label, Function: fn, Stderr: i.stderr.String()}
	var exit *sys.ExitError
	switch {
	case i.mem.refused > 0:
		e.Kind = KindOutOfMemory
		e.Msg = fmt.Sprintf("the guest asked for %s of linear memory; the task's limit is %s (raise task.memory)",
			mib(i.mem.refused), mib(i.mem.limit))
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		e.Kind = KindTimeout
		e.Msg = "the task ran past its deadline (task.timeout) and was stopped"
	case ctx.Err() != nil:
		e.Kind = KindCanceled
		e.Msg = "canceled: " + context.Cause(ctx).Error()
	case errors.As(err, &exit):
		e.Kind = KindTrap
		e.Msg = fmt.Sprintf("the guest exited with code %d", exit.ExitCode())
	default:
		e.Kind = KindTrap
		e.Msg = firstLines(err.Error(), 6)
	}
	return e
}

// CheckBatch reports whether b is a well-formed batch (docs/abi.md).
func CheckBatch(b []byte) error {
	_, _, err := batch.Scan(b)
	return err
}

// mib renders a byte count in MiB, rounded up, so that a refused size never
// reads as equal to the limit it passed.
func mib(n uint64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n")
}

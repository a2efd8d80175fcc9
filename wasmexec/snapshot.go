package wasmexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// A pre-initialized module (Wizer's idea, on wazero): its initialization
// (_initialize: C and Rust constructors, a runtime's start) runs once, its
// linear memory and mutable globals are kept, and every later instance
// starts from that snapshot instead of running the initialization again.
// Wasm state is all in memory and globals; the globals are made readable
// and writable by exporting each mutable one under globalExportPrefix+N
// when the module is loaded (exportGlobals). What else an initialization
// can see is the sandbox's clocks and random bytes, which are wazero's
// deterministic fakes (a clock that moves a millisecond per read, a
// random stream seeded with 42): the snapshot counts what the
// initialization read, and a restored instance's clocks and random stream
// go on from there, so that it cannot tell itself from an instance that
// ran its own initialization (the Go runtime reads both as it starts).

// globalExportPrefix names the exports added for a module's mutable globals.
const globalExportPrefix = "wasmgrid.global."

// snapshot is a module's state after its initialization: the pages of
// memory that differ from a new instance's before initialization (data
// segments applied, the rest zero), and the mutable globals. Writing only
// those keeps a restore to the bytes the initialization changed; a full
// copy of memory faults in every page (3.1 ms for a Rust guest's 1 MiB,
// against 1.1 ms to run its initialization).
type snapshot struct {
	size    uint32 // bytes of memory after the initialization
	pages   []snapPage
	globals []snapGlobal
	// What the initialization read of the sandbox's fake clocks and
	// random stream: a restored instance's go on from there.
	wallReads, monoReads, randBytes int64
}

// Fake sources as wazero's (internal/platform): the wall clock starts at
// midnight UTC 2022-01-01, both clocks move a millisecond per read, and
// random bytes come from math/rand seeded with 42.
const (
	fakeEpochNanos = 1640995200000 * int64(time.Millisecond)
	fakeRandSeed   = 42
)

// fakeSources counts the reads of an instance's clocks and random stream,
// starting after the given numbers of earlier reads.
type fakeSources struct {
	wall, mono, rand atomic.Int64
	rng              *rand.Rand
}

func newFakeSources(wall, mono, randBytes int64) *fakeSources {
	f := &fakeSources{rng: rand.New(rand.NewSource(fakeRandSeed))}
	f.wall.Store(wall)
	f.mono.Store(mono)
	if randBytes > 0 {
		// math/rand's Read gives the same stream however it is cut.
		_, _ = f.rng.Read(make([]byte, randBytes))
		f.rand.Store(randBytes)
	}
	return f
}

func (f *fakeSources) config(cfg wazero.ModuleConfig) wazero.ModuleConfig {
	return cfg.
		WithWalltime(func() (int64, int32) {
			t := fakeEpochNanos + (f.wall.Add(1)-1)*int64(time.Millisecond)
			return t / 1e9, int32(t % 1e9)
		}, sys.ClockResolution(1)).
		WithNanotime(func() int64 { return (f.mono.Add(1) - 1) * int64(time.Millisecond) }, sys.ClockResolution(1)).
		WithRandSource(readerFunc(func(p []byte) (int, error) {
			n, err := f.rng.Read(p)
			f.rand.Add(int64(n))
			return n, err
		}))
}

type snapPage struct {
	off  uint32
	data []byte
}

// snapPageSize is the granularity of the memory a snapshot keeps; its
// pages are runs of adjacent changed pages.
const snapPageSize = 4096

type snapGlobal struct {
	name  string
	value uint64
}

// Preinitialize runs m's initialization once in a sandboxed instance
// limited by lim and keeps the state it leaves, so that Instantiate starts
// later instances from it.
func (r *Runtime) Preinitialize(ctx context.Context, m *Module, lim Limits) error {
	if m.snap.Load() != nil {
		return nil
	}
	if m.unsnapshotable != nil {
		return fmt.Errorf("module %s cannot start from a snapshot: its globals cannot be exported (%v); it runs its initialization for every task", m.ShortHash(), m.unsnapshotable)
	}
	src := newFakeSources(0, 0, 0)
	inst, err := r.instantiateWith(ctx, m, "pre-initialization of "+m.ShortHash(), lim, src.config, false)
	if err != nil {
		return err
	}
	defer inst.Close(ctx)
	mem := inst.mod.Memory()
	if mem == nil {
		return errors.New("the module has no memory to snapshot")
	}
	after, ok := mem.Read(0, mem.Size())
	if !ok {
		return errors.New("the module's memory cannot be read")
	}
	s := &snapshot{size: uint32(len(after)),
		wallReads: src.wall.Load(), monoReads: src.mono.Load(), randBytes: src.rand.Load()}
	base, err := r.instantiateWith(ctx, m, "pre-initialization of "+m.ShortHash(), lim, func(cfg wazero.ModuleConfig) wazero.ModuleConfig {
		return cfg.WithStartFunctions()
	}, false)
	if err != nil {
		return err
	}
	before, _ := base.mod.Memory().Read(0, base.mod.Memory().Size())
	// Both memories are views of the instances' own mappings: only the
	// changed pages are copied, into one buffer, so that pre-initializing
	// a module costs the executor what the snapshot keeps and no more (a
	// copy of the whole memory stayed resident after the instances were
	// closed, and put an executor over its memory reservation).
	var changed []int
	for off := 0; off < len(after); off += snapPageSize {
		page := after[off:min(off+snapPageSize, len(after))]
		var was []byte
		if off < len(before) {
			was = before[off:min(off+snapPageSize, len(before))]
		}
		if !samePage(page, was) {
			changed = append(changed, off)
		}
	}
	buf := make([]byte, 0, len(changed)*snapPageSize)
	for i := 0; i < len(changed); {
		// Adjacent pages are one run: one copy in, one write per restore.
		j := i + 1
		for j < len(changed) && changed[j] == changed[j-1]+snapPageSize {
			j++
		}
		off, end := changed[i], min(changed[j-1]+snapPageSize, len(after))
		start := len(buf)
		buf = append(buf, after[off:end]...)
		s.pages = append(s.pages, snapPage{off: uint32(off), data: buf[start:len(buf):len(buf)]})
		i = j
	}
	base.Close(ctx)
	for _, name := range m.globals {
		g := inst.mod.ExportedGlobal(name)
		if g == nil {
			continue
		}
		s.globals = append(s.globals, snapGlobal{name: name, value: g.Get()})
	}
	m.snap.CompareAndSwap(nil, s)
	return nil
}

// restore brings a new instance, made without its start function, to the
// snapshot's state.
func (s *snapshot) restore(mod api.Module) error {
	mem := mod.Memory()
	if have, want := mem.Size(), s.size; have < want {
		if _, ok := mem.Grow((want - have) / 65536); !ok {
			return fmt.Errorf("the task's memory limit is below the %s the module holds after its initialization (raise task.memory)", mib(uint64(want)))
		}
	}
	for _, p := range s.pages {
		if !mem.Write(p.off, p.data) {
			return errors.New("restoring the module's memory failed")
		}
	}
	for _, g := range s.globals {
		mg, ok := mod.ExportedGlobal(g.name).(api.MutableGlobal)
		if !ok {
			return fmt.Errorf("global %s of the snapshot is not mutable", g.name)
		}
		mg.Set(g.value)
	}
	return nil
}

// samePage reports whether page holds was's bytes, and zeros past them.
func samePage(page, was []byte) bool {
	if !bytes.Equal(page[:len(was)], was) {
		return false
	}
	for _, c := range page[len(was):] {
		if c != 0 {
			return false
		}
	}
	return true
}

type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

var _ io.Reader = readerFunc(nil)

// exportGlobals returns the module with each mutable global exported as
// globalExportPrefix+index, appended to its export section (or in a new
// one after the global section). checkModule has validated the module's
// structure; a module without mutable globals comes back as it is.
func exportGlobals(wasm []byte) ([]byte, []string, error) {
	type section struct {
		id         byte
		start, end int // of the contents
		hdr        int // of the section's id byte
	}
	var secs []section
	r := &reader{b: wasm, off: 8}
	for r.off < len(r.b) {
		hdr := r.off
		id := r.byte()
		size := r.u32()
		if r.err != nil || int(size) > len(r.b)-r.off {
			return nil, nil, errors.New("truncated section")
		}
		secs = append(secs, section{id: id, start: r.off, end: r.off + int(size), hdr: hdr})
		r.off += int(size)
	}
	var mutable []uint32
	globalSec, exportSec := -1, -1
	for i, s := range secs {
		switch s.id {
		case 6:
			globalSec = i
			g := &reader{b: wasm[:s.end], off: s.start}
			n := g.u32()
			for idx := range n {
				g.byte() // value type
				if g.byte() == 1 {
					mutable = append(mutable, idx)
				}
				if err := skipConstExpr(g); err != nil {
					return nil, nil, fmt.Errorf("global %d: %w", idx, err)
				}
			}
			if g.err != nil {
				return nil, nil, g.fail("global section")
			}
		case 7:
			exportSec = i
		}
	}
	if len(mutable) == 0 {
		return wasm, nil, nil
	}
	var entries []byte
	var names []string
	for _, idx := range mutable {
		name := globalExportPrefix + strconv.FormatUint(uint64(idx), 10)
		names = append(names, name)
		entries = appendU32(entries, uint32(len(name)))
		entries = append(entries, name...)
		entries = append(entries, 3) // global
		entries = appendU32(entries, idx)
	}
	var body []byte
	at, skipTo := 0, 0 // where the new export section goes, and what it replaces
	if exportSec >= 0 {
		s := secs[exportSec]
		er := &reader{b: wasm[:s.end], off: s.start}
		n := er.u32()
		if er.err != nil {
			return nil, nil, er.fail("export section")
		}
		body = appendU32(nil, n+uint32(len(mutable)))
		body = append(body, wasm[er.off:s.end]...)
		body = append(body, entries...)
		at, skipTo = s.hdr, s.end
	} else {
		body = appendU32(nil, uint32(len(mutable)))
		body = append(body, entries...)
		at = secs[globalSec].end
		skipTo = at
	}
	out := make([]byte, 0, len(wasm)+len(entries)+16)
	out = append(out, wasm[:at]...)
	out = append(out, 7)
	out = appendU32(out, uint32(len(body)))
	out = append(out, body...)
	out = append(out, wasm[skipTo:]...)
	return out, names, nil
}

// skipConstExpr reads a global's initializer: one constant instruction and
// end.
func skipConstExpr(r *reader) error {
	for {
		op := r.byte()
		switch op {
		case 0x0b: // end
			return r.err
		case 0x41, 0x42, 0x23, 0xd2: // i32.const, i64.const, global.get, ref.func
			skipLEB(r)
		case 0x43:
			r.off += 4
		case 0x44:
			r.off += 8
		case 0xd0: // ref.null
			r.byte()
		default:
			return fmt.Errorf("unsupported instruction %#x in a constant expression", op)
		}
		if r.err != nil || r.off > len(r.b) {
			return errors.New("truncated constant expression")
		}
	}
}

// skipLEB skips a LEB128 number of at most 10 bytes, signed or not.
func skipLEB(r *reader) {
	for range 10 {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.err = errors.New("LEB128 longer than 10 bytes")
}

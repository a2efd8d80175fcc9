package wasmexec

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A pre-initialized module gives every instance the state its
// initialization left, and nothing of what an earlier instance did: an
// instance that ran a batch leaves its memory changed, the next one starts
// byte for byte from the snapshot, and both compute what an instance that
// ran its own initialization computes.
func TestPreinitializedInstancesStartFromTheSnapshot(t *testing.T) {
	ctx := context.Background()
	batch := batchOf([2]string{"apple", "1"}, [2]string{"apple", "2"}, [2]string{"pear", "5"})
	for lang, wasm := range benchModules(t) {
		t.Run(lang, func(t *testing.T) {
			r, err := NewRuntime(ctx, Config{CacheDir: filepath.Join(buildDir, "wazero-snapshot")})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close(ctx)
			m, err := r.Load(ctx, lang, wasm)
			if err != nil {
				t.Fatal(err)
			}
			fn := "sum"
			if lang == "go" {
				fn = "concat"
			}
			f, err := m.Function(fn)
			if err != nil {
				t.Fatal(err)
			}
			run := func() ([]byte, *Instance) {
				t.Helper()
				inst, err := r.Instantiate(ctx, m, lang, Limits{MemoryBytes: 256 << 20})
				if err != nil {
					t.Fatal(err)
				}
				out, err := inst.Call(ctx, []uint32{f.Index}, fn, batch)
				if err != nil {
					t.Fatal(err)
				}
				return bytes.Clone(out), inst
			}
			// A new instance's memory after its own initialization.
			fresh, err := r.Instantiate(ctx, m, lang, Limits{MemoryBytes: 256 << 20})
			if err != nil {
				t.Fatal(err)
			}
			initialized, _ := fresh.mod.Memory().Read(0, fresh.mod.Memory().Size())
			initialized = bytes.Clone(initialized)
			fresh.Close(ctx)
			plain, inst := run()
			inst.Close(ctx)

			if err := r.Preinitialize(ctx, m, Limits{MemoryBytes: 256 << 20}); err != nil {
				t.Fatal(err)
			}
			snap := m.snap.Load()
			first, a := run()
			defer a.Close(ctx)
			if !bytes.Equal(first, plain) {
				t.Fatalf("from the snapshot: %q, with its own initialization: %q", first, plain)
			}
			b, err := r.Instantiate(ctx, m, lang, Limits{MemoryBytes: 256 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close(ctx)
			memA, _ := a.mod.Memory().Read(0, a.mod.Memory().Size())
			memB, _ := b.mod.Memory().Read(0, b.mod.Memory().Size())
			if bytes.Equal(memA, initialized) {
				t.Fatal("a batch left the instance's memory as the snapshot: the test proves nothing")
			}
			if !bytes.Equal(memB, initialized) {
				t.Fatal("a new instance from the snapshot does not hold what one that ran its initialization holds")
			}
			for _, g := range snap.globals {
				if v := b.mod.ExportedGlobal(g.name).Get(); v != g.value {
					t.Fatalf("global %s = %d in a new instance, %d in the snapshot", g.name, v, g.value)
				}
			}
			second, c := run()
			c.Close(ctx)
			if !bytes.Equal(second, plain) {
				t.Fatalf("second instance from the snapshot: %q, want %q", second, plain)
			}
			t.Logf("snapshot of %d KiB (%d pages written per instance) and %d globals; the initialization read the clocks %d+%d times and %d random bytes",
				snap.size>>10, len(snap.pages), len(snap.globals), snap.wallReads, snap.monoReads, snap.randBytes)
		})
	}
}

// A restored instance's clocks and random stream go on from where the
// initialization left them, as they would in an instance that ran it.
func TestFakeSourcesGoOn(t *testing.T) {
	whole := newFakeSources(0, 0, 0)
	cfgRead := func(f *fakeSources) (wall int64, mono int64, rnd []byte) {
		// The functions config installs, called as WASI would.
		t := fakeEpochNanos + (f.wall.Add(1)-1)*int64(time.Millisecond)
		m := (f.mono.Add(1) - 1) * int64(time.Millisecond)
		b := make([]byte, 3)
		n, _ := f.rng.Read(b)
		f.rand.Add(int64(n))
		return t, m, b
	}
	for range 4 {
		cfgRead(whole)
	}
	w1, m1, r1 := cfgRead(whole)
	w2, m2, r2 := cfgRead(newFakeSources(4, 4, 12))
	if w1 != w2 || m1 != m2 || !bytes.Equal(r1, r2) {
		t.Fatalf("after 4 reads: %d %d %x, restored: %d %d %x", w1, m1, r1, w2, m2, r2)
	}
	if w, m, _ := cfgRead(newFakeSources(0, 0, 0)); w != fakeEpochNanos || m != 0 {
		t.Fatalf("first reads %d, %d: want wazero's fake epoch and 0", w, m)
	}
}

func FuzzExportGlobals(f *testing.F) {
	for _, lang := range []string{"c", "rust", "assemblyscript"} {
		if w, err := readPrebuilt(lang); err == nil {
			f.Add(w)
		}
	}
	f.Fuzz(func(t *testing.T, wasm []byte) {
		checked, err := checkModule(wasm, ModuleLimits{})
		if err != nil {
			return
		}
		out, names, err := exportGlobals(checked)
		if err != nil {
			return
		}
		if len(names) == 0 && !bytes.Equal(out, checked) {
			t.Fatal("a module without mutable globals was changed")
		}
		if _, err := checkModule(out, ModuleLimits{}); err != nil {
			t.Fatalf("the rewritten module does not check: %v", err)
		}
	})
}

func readPrebuilt(lang string) ([]byte, error) {
	return os.ReadFile(filepath.Join("..", "examples", "wordcount", "guest", lang, "guest.wasm"))
}

package wasmexec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// benchModules are guests to measure the host side against: the Go test
// guest (built here) and, when present, the prebuilt word counts of the
// other SDKs, whose calls cost the least guest work.
func benchModules(b testing.TB) map[string][]byte {
	mods := map[string][]byte{"go": guest(b, "testdata/testguest")}
	for _, lang := range []string{"rust", "c", "assemblyscript"} {
		if w, err := os.ReadFile(filepath.Join("..", "examples", "wordcount", "guest", lang, "guest.wasm")); err == nil {
			mods[lang] = w
		}
	}
	return mods
}

// BenchmarkBoundary measures one batch crossing into the guest and back,
// against its size: a reduce over records that all differ, so the guest
// copies every record to its output and does nothing else (the C, Rust and
// AssemblyScript word counts' sum, the Go test guest's concat). The native
// baseline copies the same bytes twice, as the host does (into guest
// memory, then the guest into its output).
func BenchmarkBoundary(b *testing.B) {
	ctx := context.Background()
	for _, size := range []int{1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20} {
		// Records of 64 bytes with distinct keys, so a reduce passes them
		// through.
		var recs [][2]string
		for n := 0; n*72 < size; n++ {
			recs = append(recs, [2]string{fmt.Sprintf("k%015d", n), fmt.Sprintf("%048d", n)})
		}
		batch := batchOf(recs...)
		b.Run(fmt.Sprintf("native/%dKiB", size>>10), func(b *testing.B) {
			in := make([]byte, len(batch))
			out := make([]byte, len(batch))
			b.SetBytes(int64(len(batch)))
			for b.Loop() {
				copy(in, batch)
				copy(out, in)
			}
		})
		for lang, wasm := range benchModules(b) {
			b.Run(fmt.Sprintf("%s/%dKiB", lang, size>>10), func(b *testing.B) {
				r, err := NewRuntime(ctx, Config{NoInterrupt: true, CacheDir: filepath.Join(buildDir, "wazero-bench")})
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close(ctx)
				m, err := r.Load(ctx, lang, wasm)
				if err != nil {
					b.Fatal(err)
				}
				fn := "sum"
				if lang == "go" {
					fn = "concat"
				}
				f, err := m.Function(fn)
				if err != nil {
					b.Fatal(err)
				}
				inst, err := r.Instantiate(ctx, m, lang, Limits{})
				if err != nil {
					b.Fatal(err)
				}
				defer inst.Close(ctx)
				b.SetBytes(int64(len(batch)))
				for b.Loop() {
					if _, err := inst.Call(ctx, []uint32{f.Index}, fn, batch); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkInstantiate measures a task's fresh instance of a module that is
// compiled already: what every task attempt pays before its first batch.
func BenchmarkInstantiate(b *testing.B) {
	ctx := context.Background()
	for lang, wasm := range benchModules(b) {
		b.Run(lang, func(b *testing.B) {
			r, err := NewRuntime(ctx, Config{NoInterrupt: true, CacheDir: filepath.Join(buildDir, "wazero-bench")})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close(ctx)
			m, err := r.Load(ctx, lang, wasm)
			if err != nil {
				b.Fatal(err)
			}
			instantiate := func(b *testing.B) {
				for b.Loop() {
					inst, err := r.Instantiate(ctx, m, lang, Limits{MemoryBytes: 512 << 20})
					if err != nil {
						b.Fatal(err)
					}
					inst.Close(ctx)
				}
			}
			b.Run("init", instantiate)
			// The same from a snapshot of its initialized state, where
			// the module can have one.
			if err := r.Preinitialize(ctx, m, Limits{MemoryBytes: 512 << 20}); err != nil {
				b.Logf("%s: %v", lang, err)
				return
			}
			b.Run("snapshot", instantiate)
		})
	}
}

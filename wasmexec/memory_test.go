package wasmexec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// envGrowBomb makes the test binary run TestGrowBombResidentMemory's child
// side: the grow bomb in a process of its own, so that its peak resident
// memory is the bomb's and not the other tests'.
const envGrowBomb = "WASMEXEC_GROW_BOMB_CACHE"

// TestGrowBombResidentMemory runs a guest that grows its memory 1 MiB at a
// time and writes every page, under a 512 MiB limit, in a child process,
// and checks the child's peak resident memory: the limit plus the
// process's own (Go runtime, compiled module), not a multiple of it.
func TestGrowBombResidentMemory(t *testing.T) {
	const limit = 512 << 20
	if dir := os.Getenv(envGrowBomb); dir != "" {
		growBombChild(t, dir, limit)
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	if testing.Short() {
		t.Skip("allocates 512 MiB")
	}
	// Compile once here, so that the child's load is a cache hit and its
	// peak is the bomb's, not the compiler's.
	cache := filepath.Join(buildDir, "wazero")
	r, err := NewRuntime(context.Background(), Config{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Load(context.Background(), "t", guest(t, "testdata/testguest")); err != nil {
		t.Fatal(err)
	}
	r.Close(context.Background())
	wasm := filepath.Join(buildDir, "testguest-bomb.wasm")
	if err := os.WriteFile(wasm, guest(t, "testdata/testguest"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestGrowBombResidentMemory$", "-test.v")
	cmd.Env = append(os.Environ(), envGrowBomb+"="+cache, "WASMEXEC_GROW_BOMB_WASM="+wasm)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var before, peak int64
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "grow bomb: "); ok {
			if _, err := fmt.Sscanf(rest, "rss before %d, peak %d", &before, &peak); err != nil {
				t.Fatalf("child said %q: %v", line, err)
			}
		}
	}
	if peak == 0 {
		t.Fatalf("the child reported no figures:\n%s", out)
	}
	t.Logf("grow bomb under a %d MiB limit: resident before %.0f MiB, peak %.0f MiB", limit>>20, mibf(before), mibf(peak))
	// The bomb's own memory is the limit; the process adds its runtime and
	// the compiled module (before). A copying allocator passed 1.5x.
	if max := before + limit + 32<<20; peak > max {
		t.Errorf("peak resident memory %.0f MiB, more than %.0f MiB (what was resident before + the limit + 32 MiB)", mibf(peak), mibf(max))
	}
}

func growBombChild(t *testing.T, cache string, limit uint64) {
	wasm, err := os.ReadFile(os.Getenv("WASMEXEC_GROW_BOMB_WASM"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := NewRuntime(ctx, Config{CacheDir: cache, NoInterrupt: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	m, err := r.Load(ctx, "t", wasm)
	// Loading leaves garbage behind (the compiled code read from the
	// cache): the figure before is the process without it.
	debug.FreeOSMemory()
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.NewPipeline(ctx, steps(t, m, "fillbomb"), Limits{MemoryBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	// Reset the peak (VmHWM) to what is resident now.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatal(err)
	}
	before := procStatus(t, "VmRSS")
	err = p.Push(ctx, batchOf([2]string{"k", "v"}), func([]byte) error { return nil })
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindOutOfMemory {
		t.Fatalf("Push = %v, want out of memory", err)
	}
	fmt.Printf("grow bomb: rss before %d, peak %d\n", before, procStatus(t, "VmHWM"))
}

// procStatus reads a size field of /proc/self/status, in bytes.
func procStatus(t *testing.T, field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

func mibf(n int64) float64 { return float64(n) / (1 << 20) }

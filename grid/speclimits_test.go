package grid

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/executor"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/internal/storage"
)

// TestSpecLimits: a spec past a limit is refused before anything is
// planned, with the limit's name.
func TestSpecLimits(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.txt")
	if err := os.WriteFile(big, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	lim := specLimits(DefaultLimits())
	spec := func(body string, conf map[string]string) *jobspec.Spec {
		t.Helper()
		text := "name = \"limits\"\n[modules.t]\npath = \"t.wasm\"\n" + body + "\n[sink]\ntext = \"" + filepath.Join(t.TempDir(), "out") + "\"\n"
		os.WriteFile(filepath.Join(dir, "t.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644)
		s, err := jobspec.Parse([]byte(text), filepath.Join(dir, "job.toml"), nil, conf)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	plan := func(s *jobspec.Spec) error {
		if err := checkSpecLimits(s, lim); err != nil {
			return err
		}
		st := &storage.Cache{}
		defer st.Close()
		in := &storage.Finder{Ctx: context.Background(), Grants: localGrants("t"), Stores: st}
		_, err := s.Plan(jobspec.Lowering{Slots: 2, Inputs: in, MaxSplits: lim.Splits})
		return err
	}
	inline := make([]string, 100001)
	for i := range inline {
		inline[i] = `"v"`
	}
	tests := []struct {
		name, body string
		conf       map[string]string
		want       string
	}{
		{"partitions", "[source]\ngenerate = 10\n[[steps]]\nmap = \"t.f\"", map[string]string{"partitions": "100000"}, "limits.partitions"},
		{"step partitions", "[source]\ngenerate = 10\n[[steps]]\nrepartition = 20000", nil, "limits.partitions"},
		{"inline values", "[source]\ninline = [" + strings.Join(inline, ",") + "]\n[[steps]]\nmap = \"t.f\"", nil, "limits.inline_values"},
		{"parts", "[source]\ninline = [\"a\"]\nparts = 20000\n[[steps]]\nmap = \"t.f\"", nil, "limits.splits"},
		{"splits", "[source]\ntext = \"" + big + "\"\n[[steps]]\nmap = \"t.f\"", map[string]string{"source.split_size": "64B"}, "limits.splits"},
	}
	for _, tt := range tests {
		err := plan(spec(tt.body, tt.conf))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error naming %s", tt.name, err, tt.want)
		}
	}
	if err := plan(spec("[source]\ntext = \""+big+"\"\n[[steps]]\nmap = \"t.f\"", map[string]string{"source.split_size": "1KiB", "partitions": "10000"})); err != nil {
		t.Errorf("1,024 splits and 10,000 partitions: %v", err)
	}
	mods := "[source]\ngenerate = 10\n[[steps]]\nmap = \"t.f\""
	for i := range 17 {
		mods += "\n[modules.m" + string(rune('a'+i)) + "]\npath = \"t.wasm\""
	}
	if err := plan(spec(mods, nil)); err == nil || !strings.Contains(err.Error(), "limits.modules_per_job") {
		t.Errorf("18 modules: %v", err)
	}
}

// TestInspectorQueue: past the processes and the queue, a manifest read
// is refused at once with a time to retry.
func TestInspectorQueue(t *testing.T) {
	in := &inspector{slots: make(chan struct{}, 1), queue: 1}
	release, err := in.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		r, err := in.acquire(context.Background())
		if err == nil {
			r()
		}
		got <- err
	}()
	for in.waiting.Load() != 1 {
		runtime.Gosched()
	}
	_, err = in.acquire(context.Background())
	var busy *busyError
	if !errors.As(err, &busy) || busy.retryAfter <= 0 {
		t.Fatalf("a read past the queue: %v", err)
	}
	release()
	if err := <-got; err != nil {
		t.Errorf("the queued read: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	release, _ = in.acquire(context.Background())
	cancel()
	if _, err := in.acquire(ctx); err == nil {
		t.Error("a canceled wait acquired a slot")
	}
	release()
}

// initGrowWAT grows its memory 1 MiB at a time in _initialize until
// memory.grow fails, then traps: a module that cannot initialize within
// any cap.
const initGrowWAT = `(module
  (memory (export "memory") 8)
  (data (i32.const 16) "map f\n")
  (func (export "_initialize")
    (loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    (unreachable))
  (func (export "wasmgrid_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgrid_describe") (result i64) (i64.const 0x1000000006))
  (func (export "wasmgrid_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "wasmgrid_run") (param i32 i32) (result i32) (i32.const 0))
  (func (export "wasmgrid_output") (result i64) (i64.const 0)))`

// TestInspectorMemoryCap: a module's initialization gets the inspector's
// cap, not the job's 4 GiB, and the error names the cap.
func TestInspectorMemoryCap(t *testing.T) {
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Skip("wat2wasm (wabt) is not on PATH")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "grow.wat")
	os.WriteFile(src, []byte(initGrowWAT), 0o644)
	if out, err := exec.Command(wat2wasm, src, "-o", filepath.Join(dir, "grow.wasm")).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, out)
	}
	wasm, _ := os.ReadFile(filepath.Join(dir, "grow.wasm"))
	exe, _ := os.Executable()
	const capMiB = 64
	in := &inspector{argv: []string{exe}, cfg: executor.Config{CacheDir: testCacheDir, LoadTimeout: 20 * time.Second, Interruptible: true, MemoryLimit: inspectorGoLimit(capMiB << 20)},
		dir: dir, loadTimeout: 20 * time.Second, compileTimeout: time.Minute, initTimeout: 30 * time.Second, logger: slog.New(slog.DiscardHandler),
		memoryCap: capMiB << 20, slots: make(chan struct{}, 2), queue: 4}
	blob, err := storeBytes(dir, "grow", wasm)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = in.describe(context.Background(), blob, 4<<30)
	t.Logf("refused in %s", time.Since(start))
	if err == nil {
		t.Fatal("a module that grows without end was described")
	}
	t.Log(err)
	for _, want := range []string{"out of memory", "64 MiB", "limits.inspector_memory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

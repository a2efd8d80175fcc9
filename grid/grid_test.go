package grid

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/wasmgrid/wasmgrid/internal/executor"
	"github.com/wasmgrid/wasmgrid/internal/guestbuild"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/shuffle"
	"go.uber.org/goleak"
)

// testCacheDir is shared by the package's grids, so that each module is
// compiled once per test binary: compiling under -race is slow.
var testCacheDir string

func TestMain(m *testing.M) {
	executor.MainIfExecutor()
	d, err := os.MkdirTemp("", "grid-test-cache")
	if err != nil {
		panic(err)
	}
	testCacheDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// testGuest builds wasmexec's test guest, whose functions misbehave on
// purpose.
func testGuest(t *testing.T) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "t.wasm")
	dir, _ := filepath.Abs("../wasmexec/testdata/testguest")
	if err := guestbuild.BuildGo(context.Background(), dir, out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startGrid runs an embedded grid for the test and checks, at the end,
// that it left no goroutine behind.
func startGrid(t *testing.T, cfg Config) *Grid {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	cfg.CacheDir = testCacheDir
	if os.Getenv("GRID_TEST_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if _, err := os.Stat(g.StateDir()); !os.IsNotExist(err) {
			t.Errorf("state directory %s left behind", g.StateDir())
		}
		goleak.VerifyNone(t, ignore)
	})
	return g
}

func testSpec(t *testing.T, step string, conf map[string]string) *jobspec.Spec {
	t.Helper()
	data, _ := filepath.Abs("../examples/wordcount/data")
	text := `name = "hostile"
[modules.t]
path = "t.wasm"
[source]
text = "` + data + `/*.txt"
[[steps]]
` + step + `
[sink]
text = "` + filepath.Join(t.TempDir(), "out") + `"
`
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "t.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644)
	spec, err := jobspec.Parse([]byte(text), filepath.Join(dir, "job.toml"), nil, conf)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestCancelStopsRunningAttempts: canceling a job whose guest loops for
// ever (task.timeout at its 10-minute default) ends it within the
// attempts' grace, not at their deadline: the agent asks the executor to
// stop them and kills it when it cannot.
func TestCancelStopsRunningAttempts(t *testing.T) {
	started := make(chan struct{})
	g := startGrid(t, Config{Slots: 2, Logger: slog.New(&onMessage{msg: "task started", ch: started})})
	j, err := g.Submit(context.Background(), JobRequest{Spec: testSpec(t, `map = "t.loop"`, nil), Modules: map[string][]byte{"t": testGuest(t)}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-j.Done():
		t.Fatal("the job ended before any attempt started")
	case <-time.After(2 * time.Minute):
		t.Fatal("no attempt started within 2 minutes")
	}
	start := time.Now()
	j.Cancel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = j.Wait(ctx)
	if ctx.Err() != nil {
		t.Fatalf("the job did not end within a minute of its cancel: %v", err)
	}
	if err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("Wait = %v, want the job canceled", err)
	}
	t.Logf("ended %s after its cancel: %v", time.Since(start).Round(time.Millisecond), err)
}

// onMessage is a slog handler that closes ch at the first record whose
// message is msg.
type onMessage struct {
	msg  string
	ch   chan struct{}
	once sync.Once
}

func (h *onMessage) Enabled(context.Context, slog.Level) bool { return true }
func (h *onMessage) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *onMessage) WithGroup(string) slog.Handler            { return h }
func (h *onMessage) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.ch) })
	}
	return nil
}

func TestFailingGuestFailsTheJobAfterRetries(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := startGrid(t, Config{Agents: 2, Slots: 2, Metrics: reg})
	wasm := testGuest(t)
	tests := []struct {
		step     string
		conf     map[string]string
		want     []string
		attempts int
	}{
		{`map = "t.fail"`, nil, []string{"failed 3 times", "module t (sha256 ", "function fail", "guest error: fail: refusing record"}, 3},
		{`map = "t.loop"`, map[string]string{"task.timeout": "200ms", "task.max_attempts": "2"}, []string{"failed 2 times", "module t (sha256 ", "function loop", "ran past its deadline (task.timeout = 200ms)"}, 2},
		{`map = "t.bomb"`, map[string]string{"task.memory": "32MiB", "task.max_attempts": "1"}, []string{"function bomb", "out of memory", "limit is 32 MiB"}, 1},
		{`map = "t.exit"`, map[string]string{"task.max_attempts": "1"}, []string{"exited with code 3", "about to exit"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.step, func(t *testing.T) {
			spec := testSpec(t, tt.step, tt.conf)
			j, err := g.Submit(context.Background(), JobRequest{Spec: spec, Modules: map[string][]byte{"t": wasm}})
			if err != nil {
				t.Fatal(err)
			}
			// The bound only keeps a hung job from hanging the test binary;
			// a loaded CI machine needs minutes for three retried deadlines.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			sum, err := j.Wait(ctx)
			if err == nil {
				t.Fatal("job succeeded")
			}
			if ctx.Err() != nil || sum == nil {
				t.Fatalf("the job did not end: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			if sum.FailedAttempts < tt.attempts {
				t.Errorf("%d failed attempts, want at least %d", sum.FailedAttempts, tt.attempts)
			}
			if _, err := os.Stat(spec.Sink.Path); !os.IsNotExist(err) {
				t.Errorf("a failed job left its output directory: %v", err)
			}
			for _, a := range g.agents {
				if _, err := os.Stat(a.jobDir(j.ID())); !os.IsNotExist(err) {
					t.Errorf("%s kept shuffle files of the failed job", a.name)
				}
			}
		})
	}
	// The grid still runs good jobs after hostile ones.
	spec := testSpec(t, `map = "t.upper"`, nil)
	j, err := g.Submit(context.Background(), JobRequest{Spec: spec, Modules: map[string][]byte{"t": wasm}})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := j.Wait(context.Background())
	if err != nil || sum.RecordsOut != sum.RecordsIn || sum.RecordsIn == 0 {
		t.Fatalf("good job after hostile ones: %v, %+v", err, sum)
	}
	if got := testutil.ToFloat64(g.coord.metrics.jobs.WithLabelValues("failed")); got != 4 {
		t.Errorf("jobs_total{outcome=failed} = %v, want 4", got)
	}
	if got := testutil.ToFloat64(g.coord.metrics.jobs.WithLabelValues("succeeded")); got != 1 {
		t.Errorf("jobs_total{outcome=succeeded} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(g.coord.metrics.recordsOut); got != float64(sum.RecordsOut) {
		t.Errorf("result_records_total = %v, want %d", got, sum.RecordsOut)
	}
	if got := testutil.ToFloat64(g.coord.metrics.runningTasks); got != 0 {
		t.Errorf("running_tasks = %v after every job ended", got)
	}
}

func TestSubmitRejectsTaskLargerThanAnyAgent(t *testing.T) {
	g := startGrid(t, Config{Slots: 1, MemoryMiB: 256})
	spec := testSpec(t, `map = "t.upper"`, map[string]string{"task.memory": "1GiB"})
	_, err := g.Submit(context.Background(), JobRequest{Spec: spec, Modules: map[string][]byte{"t": testGuest(t)}})
	if err == nil || !strings.Contains(err.Error(), "a task needs 1024 MiB (task.memory) but the largest agent has 256 MiB") {
		t.Fatalf("Submit = %v", err)
	}
}

// TestCorruptBlockRerunsOnlyItsMapTask flips a byte of one map output after
// the map stage and checks that the reducer's checksum catches it, that the
// scheduler reruns that map task alone, and that the result is still exact.
func TestCorruptBlockRerunsOnlyItsMapTask(t *testing.T) {
	g := startGrid(t, Config{Agents: 2, Slots: 2})
	var once sync.Once
	corrupted := make(chan string, 1)
	for _, a := range g.agents {
		a.beforeTask = func(l launch) {
			if l.spec.Stage.ShuffleIn == nil {
				return
			}
			once.Do(func() {
				in := l.spec.Inputs[0]
				id := shuffle.MapOutputID{ShuffleID: uint64(l.spec.Stage.ShuffleIn.ID), MapIndex: uint32(in.MapIndex), Attempt: uint32(in.Attempt)}
				path := filepath.Join(g.stateDir, in.Agent, "jobs", l.job, shuffle.DataFileName(id))
				b, err := os.ReadFile(path)
				if err != nil {
					t.Error(err)
					return
				}
				b[len(b)-1] ^= 0xff // inside the last chunk of the last block
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Error(err)
				}
				corrupted <- path
			})
		}
	}
	data, _ := filepath.Abs("../examples/wordcount/data")
	guest, _ := filepath.Abs("../examples/wordcount/guest/go")
	wasm := filepath.Join(t.TempDir(), "wc.wasm")
	if err := guestbuild.BuildGo(context.Background(), guest, wasm); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	text := `[modules.wc]
path = "` + wasm + `"
[source]
text = "` + data + `/*.txt"
[[steps]]
flat_map = "wc.split"
[[steps]]
reduce_by_key = "wc.sum"
[sink]
text = "` + out + `"
[conf]
partitions = 1
source.split_size = "600B"
`
	spec, err := jobspec.Parse([]byte(text), filepath.Join(t.TempDir(), "job.toml"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(wasm)
	j, err := g.Submit(context.Background(), JobRequest{Spec: spec, Modules: map[string][]byte{"wc": b}})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := j.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-corrupted:
	default:
		t.Fatal("no block was corrupted")
	}
	maps := sum.Tasks - 1
	// Every map task ran once, the corrupted one twice, and the reducer twice.
	if sum.Attempts != maps+1+2 || sum.FailedAttempts != 1 {
		t.Fatalf("%d attempts (%d failed) for %d map tasks and 1 reducer; want one map rerun and one reduce retry", sum.Attempts, sum.FailedAttempts, maps)
	}
	res, err := os.ReadFile(filepath.Join(out, "part-00000"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"the\t32\n", "jabberwock\t3\n", "tyger\t4\n"} {
		if !strings.Contains(string(res), want) {
			t.Errorf("result lacks %q", want)
		}
	}
}

func TestSubmitAfterStopFails(t *testing.T) {
	g, err := New(Config{Slots: 1, CacheDir: testCacheDir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g.Run(ctx)
	spec := testSpec(t, `map = "t.upper"`, nil)
	_, err = g.Submit(context.Background(), JobRequest{Spec: spec, Modules: map[string][]byte{"t": testGuest(t)}})
	if !errors.Is(err, errStopped) {
		t.Fatalf("Submit to a stopped grid = %v", err)
	}
}

func TestShuffleDiskCap(t *testing.T) {
	g := startGrid(t, Config{Slots: 1, ShuffleDiskBytes: 100})
	data, _ := filepath.Abs("../examples/wordcount/data")
	guest, _ := filepath.Abs("../examples/wordcount/guest/c/guest.wasm")
	wasm, err := os.ReadFile(guest)
	if err != nil {
		t.Fatal(err)
	}
	text := `[modules.wc]
path = "` + guest + `"
[source]
text = "` + data + `/*.txt"
[[steps]]
flat_map = "wc.split"
[[steps]]
reduce_by_key = "wc.sum"
[sink]
text = "-"
[conf]
task.max_attempts = 2
`
	spec, err := jobspec.Parse([]byte(text), filepath.Join(t.TempDir(), "job.toml"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	j, err := g.Submit(context.Background(), JobRequest{Spec: spec, Modules: map[string][]byte{"wc": wasm}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = j.Wait(context.Background())
	if err == nil || !strings.Contains(err.Error(), "shuffle disk cap (100 bytes) would be passed") {
		t.Fatalf("job = %v, want the disk cap's error", err)
	}
	entries, _ := filepath.Glob(filepath.Join(g.stateDir, "agent-1", "jobs", "*", "shuffle_*"))
	if len(entries) != 0 {
		t.Fatalf("map outputs kept past the cap: %v", entries)
	}
}

package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/planner"
	"github.com/wasmgrid/wasmgrid/wasmexec"
	"go.uber.org/goleak"
)

// startPool runs a pool of this test binary's executors until the test
// ends.
func startPool(t *testing.T, cfg PoolConfig) *Pool {
	t.Helper()
	cfg.Argv = []string{os.Args[0]}
	cfg.Config.CacheDir = filepath.Join(os.TempDir(), "wasmgrid-executor-test-cache")
	p := NewPool(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, 5*time.Second)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return p
}

// executorOf is tenant's executor now, or nil.
func (p *Pool) executorOf(tenant string) *tenantExecutor {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.execs[tenant]
}

var smallTask = Reservation{Memory: 64 << 20, CPUMillis: 1000}

func TestPoolRunsEachTenantInItsOwnExecutor(t *testing.T) {
	p := startPool(t, PoolConfig{})
	run := func(tenant, fn string) (Response, error) {
		m := mapTask(t, fn)
		m.MemoryBytes = 64 << 20
		return p.Exec(context.Background(), tenant, m, smallTask, time.Second)
	}
	for _, tenant := range []string{"a", "b", "a"} {
		if r, err := run(tenant, "upper"); err != nil || r.Failure != nil {
			t.Fatalf("%s: %+v, %v", tenant, r, err)
		}
	}
	a, b := p.executorOf("a"), p.executorOf("b")
	if a == nil || b == nil || a.proc.Pid() == b.proc.Pid() {
		t.Fatalf("executors a %v, b %v: want two", a, b)
	}
	// Tenant a's endless loop is stopped by killing a's executor; b's is
	// untouched, and a's next attempt gets a new one.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cpu0 := cpuTime(t, a.proc.Pid())
	done := make(chan error, 1)
	go func() {
		_, err := p.Exec(ctx, "a", mapTask(t, "loop"), smallTask, 200*time.Millisecond)
		done <- err
	}()
	// Canceled once the guest spins, so that it cannot stop by itself.
	waitUntil(t, 30*time.Second, "a's guest to spin", func() bool { return cpuTime(t, a.proc.Pid())-cpu0 > 200*time.Millisecond })
	cancel()
	err := <-done
	var died *DiedError
	if !errors.As(err, &died) || !died.Killed {
		t.Fatalf("a's loop: %v, want its executor killed", err)
	}
	if r, err := run("b", "upper"); err != nil || r.Failure != nil || p.executorOf("b") != b {
		t.Fatalf("b after a's executor was killed: %+v, %v (executor %v, was %v)", r, err, p.executorOf("b"), b)
	}
	if r, err := run("a", "upper"); err != nil || r.Failure != nil {
		t.Fatalf("a after its executor was killed: %+v, %v", r, err)
	}
	if got := p.executorOf("a"); got == nil || got.proc.Pid() == a.proc.Pid() {
		t.Fatalf("a's executor after the kill: %v, want a new one", got)
	}
}

// bomb is an attempt that grows its linear memory without end, writing
// every page, under a linear-memory limit far above what its executor
// may hold.
func bomb(t *testing.T) *TaskMsg {
	m := mapTask(t, "fillbomb")
	m.MemoryBytes = 2 << 30
	return m
}

func TestPoolWatchdogKillsAnExecutorOverItsMemory(t *testing.T) {
	p := startPool(t, PoolConfig{NoCgroups: true, Overhead: 48 << 20, WatchEvery: 20 * time.Millisecond})
	_, err := p.Exec(context.Background(), "t", bomb(t), Reservation{Memory: 16 << 20, CPUMillis: 1000}, time.Second)
	var memErr *MemoryError
	if !errors.As(err, &memErr) || memErr.Cgroup {
		t.Fatalf("Exec = %v, want the watchdog's MemoryError", err)
	}
	want := "over the 64 MiB reserved for its running tasks (task.memory = 16 MiB + 48 MiB overhead): lower the job's memory use or raise task.memory"
	if !strings.HasPrefix(err.Error(), "executor of tenant t reached ") || !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want %q", err, want)
	}
	if memErr.Resident <= 64<<20 || memErr.Resident > 256<<20 {
		t.Errorf("killed at %d bytes resident", memErr.Resident)
	}
	t.Log(err)
	if r, err := p.Exec(context.Background(), "t", mapTask(t, "upper"), smallTask, time.Second); err != nil || r.Failure != nil {
		t.Fatalf("the next attempt: %+v, %v", r, err)
	}
}

func TestPoolCgroupKillsAnExecutorOverItsMemory(t *testing.T) {
	if s := findCgroups(cgroupMount, "/proc/self/cgroup"); s.memParent == "" {
		t.Skipf("no memory cgroup to make here: %s", strings.Join(s.missing, "; "))
	}
	// A watchdog too slow to act: the kernel does.
	p := startPool(t, PoolConfig{Overhead: 48 << 20, WatchEvery: time.Hour})
	_, err := p.Exec(context.Background(), "t", bomb(t), Reservation{Memory: 16 << 20, CPUMillis: 1000}, time.Second)
	var memErr *MemoryError
	if !errors.As(err, &memErr) || !memErr.Cgroup {
		t.Fatalf("Exec = %v, want the cgroup's MemoryError", err)
	}
	if want := "executor of tenant t was killed by the kernel at its cgroup's memory limit"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want %q", err, want)
	}
	t.Log(err)
}

func TestPoolStopsIdleExecutors(t *testing.T) {
	p := startPool(t, PoolConfig{IdleTimeout: 50 * time.Millisecond})
	if r, err := p.Exec(context.Background(), "t", mapTask(t, "upper"), smallTask, time.Second); err != nil || r.Failure != nil {
		t.Fatalf("Exec = %+v, %v", r, err)
	}
	e := p.executorOf("t")
	select {
	case <-e.proc.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the idle executor is still running")
	}
	if p.executorOf("t") != nil {
		t.Error("the pool still lists the stopped executor")
	}
}

func TestPoolIdleClock(t *testing.T) {
	now := time.Unix(1000, 0)
	p := NewPool(PoolConfig{IdleTimeout: time.Minute, now: func() time.Time { return now }})
	busy := &tenantExecutor{tenant: "busy", running: map[uint64]Reservation{1: smallTask}, idleSince: now.Add(-time.Hour)}
	idle := &tenantExecutor{tenant: "idle", running: map[uint64]Reservation{}, idleSince: now.Add(-61 * time.Second)}
	fresh := &tenantExecutor{tenant: "fresh", running: map[uint64]Reservation{}, idleSince: now.Add(-59 * time.Second)}
	p.execs = map[string]*tenantExecutor{"busy": busy, "idle": idle, "fresh": fresh}
	got := p.idle(now)
	if len(got) != 1 || got[0] != idle || len(p.execs) != 2 {
		t.Fatalf("idle = %v, left %v", got, p.execs)
	}
}

func TestPoolRunStopsItsExecutors(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := NewPool(PoolConfig{Argv: []string{os.Args[0]}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, 5*time.Second)
	}()
	if r, err := p.Exec(context.Background(), "t", mapTask(t, "upper"), smallTask, time.Second); err != nil || r.Failure != nil {
		t.Fatalf("Exec = %+v, %v", r, err)
	}
	e := p.executorOf("t")
	cancel()
	<-done
	select {
	case <-e.proc.Done():
	default:
		t.Fatal("Run returned with an executor running")
	}
	if _, err := p.Exec(context.Background(), "t", mapTask(t, "upper"), smallTask, time.Second); !errors.Is(err, ErrPoolStopped) {
		t.Fatalf("Exec after Run = %v", err)
	}
}

func TestMemoryErrorSaysWhatWasReserved(t *testing.T) {
	for _, tt := range []struct {
		e    MemoryError
		want string
	}{
		{MemoryError{Tenant: "T", Resident: 612 << 20, Limit: 544 << 20, Tasks: []int64{512 << 20}, Overhead: 32 << 20},
			"executor of tenant T reached 612 MiB resident, over the 544 MiB reserved for its running tasks (task.memory = 512 MiB + 32 MiB overhead): lower the job's memory use or raise task.memory"},
		{MemoryError{Tenant: "T", Resident: 1100 << 20, Limit: 1056 << 20, Tasks: []int64{512 << 20, 512 << 20}, Overhead: 32 << 20},
			"executor of tenant T reached 1100 MiB resident, over the 1056 MiB reserved for its running tasks (2 tasks, task.memory = 512 MiB each + 32 MiB overhead): lower the job's memory use or raise task.memory"},
		{MemoryError{Tenant: "T", Resident: 900 << 20, Limit: 800 << 20, Tasks: []int64{512 << 20, 256 << 20}, Overhead: 32 << 20, Cgroup: true},
			"executor of tenant T was killed by the kernel at its cgroup's memory limit (900 MiB resident at most), 64 MiB over the 800 MiB reserved for its running tasks (task.memory = 512 MiB + 256 MiB + 32 MiB overhead): lower the job's memory use or raise task.memory"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

// TestExecutorKeepsFewIdleModules loads six modules for six attempts in
// turn: the executor keeps the four used last, and loads an evicted one
// again when an attempt needs it.
func TestExecutorKeepsFewIdleModules(t *testing.T) {
	ctx := context.Background()
	rt, err := wasmexec.NewRuntime(ctx, wasmexec.Config{CacheDir: filepath.Join(os.TempDir(), "wasmgrid-executor-test-cache")})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	s := &server{rt: rt, logger: slog.New(slog.DiscardHandler), tasks: map[uint64]context.CancelCauseFunc{}, modules: map[string]*loadedModule{}}
	base, err := os.ReadFile(testGuest(t).Path)
	if err != nil {
		t.Fatal(err)
	}
	var files []ModuleFile
	for i := range 6 {
		// The same module with a custom section of its own: another hash.
		b := append(slices.Clone(base), 0, 4, 2, 'v', byte('0'+i), 0)
		sum := sha256.Sum256(b)
		path := filepath.Join(t.TempDir(), "m.wasm")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, ModuleFile{Name: "t", Hash: hex.EncodeToString(sum[:]), Path: path})
	}
	use := func(f ModuleFile) {
		t.Helper()
		if _, err := s.load(ctx, planner.TaskSpec{}, []ModuleFile{f}, 64<<20); err != nil {
			t.Fatal(err)
		}
		s.unuse([]ModuleFile{f})
	}
	for _, f := range files {
		use(f)
	}
	if len(s.modules) != maxIdleModules {
		t.Fatalf("%d modules loaded, want %d", len(s.modules), maxIdleModules)
	}
	for _, f := range files[:2] {
		if s.modules[f.Hash] != nil {
			t.Errorf("module %s, used first, is still loaded", f.Hash[:12])
		}
	}
	use(files[0])
	if s.modules[files[0].Hash] == nil || s.modules[files[2].Hash] != nil || len(s.modules) != maxIdleModules {
		t.Errorf("after using the first module again: %d loaded", len(s.modules))
	}
}

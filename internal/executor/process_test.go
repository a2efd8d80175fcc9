package executor

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/guestbuild"
	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/planner"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	MainIfExecutor()
	switch os.Getenv(envTestHelper) {
	case "orphan":
		orphanHelper()
	case "killtimer":
		killTimerHelper(false)
	case "killtimer-stopped":
		killTimerHelper(true)
	}
	code := m.Run()
	os.Exit(code)
}

// envTestHelper makes the test binary a helper process of a test.
const envTestHelper = "EXECUTOR_TEST_HELPER"

var (
	guestOnce sync.Once
	guestPath string
	guestHash string
	guestErr  error
)

// testGuest builds wasmexec's hostile test guest once and stores it where
// an agent would.
func testGuest(t *testing.T) ModuleFile {
	guestOnce.Do(func() {
		dir, err := os.MkdirTemp("", "executor-test")
		if err != nil {
			guestErr = err
			return
		}
		guestPath = filepath.Join(dir, "t.wasm")
		src, _ := filepath.Abs("../../wasmexec/testdata/testguest")
		guestErr = guestbuild.BuildGo(context.Background(), src, guestPath)
		if guestErr == nil {
			guestHash, guestErr = sha256File(guestPath)
		}
	})
	if guestErr != nil {
		t.Fatal(guestErr)
	}
	return ModuleFile{Name: "t", Hash: guestHash, Path: guestPath}
}

func start(t *testing.T) *Process {
	t.Helper()
	p, err := StartProcess([]string{os.Args[0]}, Config{CacheDir: filepath.Join(os.TempDir(), "wasmgrid-executor-test-cache")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(5 * time.Second) })
	return p
}

// mapTask is a one-stage task: the lines of a file through one map function
// into a result file.
func mapTask(t *testing.T, fn string) *TaskMsg {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, []byte("alpha\nbeta\n"), 0o644)
	st := &planner.Stage{Steps: []planner.Step{{Op: planner.OpMap, Func: planner.FuncRef{Module: "t", Function: fn}}}, Partitions: 1}
	st.Splits = []planner.Split{{Volume: "work", Path: filepath.Base(in), Length: 11}}
	return &TaskMsg{
		Spec:    planner.TaskSpec{Stage: st, Split: &st.Splits[0]},
		Modules: []ModuleFile{testGuest(t)},
		Settings: Settings{
			BatchSize:    1 << 16,
			MaxRecord:    1 << 20,
			OutputFile:   "out/part-00000",
			OutputVolume: "work",
			Volumes:      map[string]storage.Volume{"work": {Name: "work", URL: "file://" + dir}},
		},
	}
}

func TestProcessRunsTasks(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := start(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := mapTask(t, "upper")
			r, err := p.Run(context.Background(), m, time.Second)
			if err != nil || r.Failure != nil {
				t.Errorf("Run = %+v, %v", r, err)
				return
			}
			b, _ := os.ReadFile(filepath.Join(m.Volumes["work"].Root(), m.OutputFile))
			if string(b) != "ALPHA\nBETA\n" || r.Result.RecordsIn != 2 || r.Result.RecordsOut != 2 {
				t.Errorf("output %q, result %+v", b, r.Result)
			}
		}()
	}
	wg.Wait()
	r, err := p.Run(context.Background(), mapTask(t, "fail"), time.Second)
	if err != nil || r.Failure == nil || r.Failure.Kind != planner.TaskError || !strings.Contains(r.Err, "fail: refusing record") {
		t.Fatalf("failing guest: %+v, %v", r, err)
	}
	r, err = p.Run(context.Background(), mapTask(t, "exit"), time.Second)
	if err != nil || r.Failure == nil || !strings.Contains(r.Log, "about to exit") {
		t.Fatalf("exiting guest: %+v, %v (the executor must survive its guests)", r, err)
	}
	p.Close(5 * time.Second)
}

func TestProcessDeathFailsRunningTasks(t *testing.T) {
	p := start(t)
	if _, err := p.Run(context.Background(), mapTask(t, "upper"), time.Second); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Run(context.Background(), mapTask(t, "loop"), time.Second)
		done <- err
	}()
	// Whether the request got there or not, the attempt fails with the
	// process's death, as it would if the kernel's OOM killer struck.
	syscall.Kill(p.Pid(), syscall.SIGKILL)
	err := <-done
	var died *DiedError
	if !errors.As(err, &died) || died.Killed || !strings.Contains(err.Error(), "signal: killed") {
		t.Fatalf("Run = %v, want a DiedError naming the signal", err)
	}
	if _, err := p.Run(context.Background(), mapTask(t, "upper"), time.Second); !errors.As(err, &died) {
		t.Fatalf("Run on a dead executor = %v", err)
	}
}

// TestCancelStopsAStuckGuest cancels an attempt whose guest never returns.
// The cancel may reach the executor before the guest starts, and then the
// executor stops the attempt between batches; or after, and then the guest
// cannot be stopped and the agent kills the executor after the grace
// period. Either way Run returns, and says which.
func TestCancelStopsAStuckGuest(t *testing.T) {
	p := start(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	type outcome struct {
		r   Response
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		r, err := p.Run(ctx, mapTask(t, "loop"), 200*time.Millisecond)
		done <- outcome{r, err}
	}()
	cancel(errors.New("job canceled"))
	o := <-done
	var died *DiedError
	switch {
	case errors.As(o.err, &died):
		if !died.Killed || !strings.Contains(o.err.Error(), "did not stop within 200ms (job canceled)") {
			t.Fatalf("Run = %v, want the agent's kill", o.err)
		}
	case o.err == nil && o.r.Failure != nil && o.r.Failure.Kind == planner.Lost:
		// Stopped before the guest ran.
	default:
		t.Fatalf("Run = %+v, %v", o.r, o.err)
	}
}

// TestSwappedInputLinkRefused plants a symbolic link where a split's file
// was when the job was planned: the executor opens inputs through the
// volume, so the task fails with the refusal and reads nothing outside.
func TestSwappedInputLinkRefused(t *testing.T) {
	p := start(t)
	m := mapTask(t, "upper")
	in := filepath.Join(m.Volumes["work"].Root(), m.Spec.Split.Path)
	if err := os.Remove(in); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", in); err != nil {
		t.Fatal(err)
	}
	r, err := p.Run(context.Background(), m, time.Second)
	if err != nil || r.Failure == nil || !strings.Contains(r.Err, "leads out of volume work") {
		t.Fatalf("Run = %+v, %v; want a failure saying the input leads out of volume work", r, err)
	}
	if r.Failure.Kind != planner.Fatal {
		t.Errorf("failure kind %v; want Fatal (no retry reads it)", r.Failure.Kind)
	}
	if _, err := os.Stat(filepath.Join(m.Volumes["work"].Root(), "out")); err == nil {
		if ents, _ := os.ReadDir(filepath.Join(m.Volumes["work"].Root(), "out")); len(ents) > 0 {
			t.Errorf("the failed task left output: %v", ents)
		}
	}
}

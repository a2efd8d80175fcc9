package executor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/planner"
	"go.uber.org/goleak"
)

// TestExecutorEnforcesItsDeadline runs a guest that never returns with a
// timeout, under an agent that does not enforce it (its context never
// ends): the executor ends, saying why. With the garbage collector off it
// exits by itself DeadlineGrace after the deadline; with it on, a
// collection soon waits for the spinning guest and stalls every goroutine,
// and the kernel's deadline timer ends it half a second later.
func TestExecutorEnforcesItsDeadline(t *testing.T) {
	t.Run("gc off", func(t *testing.T) {
		t.Setenv("GOGC", "off")
		testExecutorDeadline(t, []string{"stopped itself", "ran past its deadline (task.timeout = 300ms)", "did not stop within 2s"})
	})
	t.Run("gc on", func(t *testing.T) {
		testExecutorDeadline(t, nil)
	})
}

func testExecutorDeadline(t *testing.T, wants []string) {
	p := start(t)
	if _, err := p.Run(context.Background(), mapTask(t, "upper"), time.Second); err != nil {
		t.Fatal(err)
	}
	m := mapTask(t, "loop")
	m.Timeout = 300 * time.Millisecond
	begin := time.Now()
	_, err := p.Run(context.Background(), m, time.Hour)
	elapsed := time.Since(begin)
	var died *DiedError
	if !errors.As(err, &died) || !died.Killed {
		t.Fatalf("Run = %v, want the executor to have stopped itself", err)
	}
	if wants == nil {
		if strings.Contains(err.Error(), "deadline timer") {
			wants = []string{"ended by its deadline timer", "ran more than 2.5s past its deadline (task.timeout)"}
		} else {
			wants = []string{"stopped itself", "ran past its deadline (task.timeout = 300ms)"}
		}
	}
	for _, want := range wants {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if max := m.Timeout + DeadlineGrace + DeadlineSignalDelay + time.Second; elapsed > max {
		t.Errorf("the executor exited %s after the task started; want within %s", elapsed, max)
	}
	t.Logf("exited %s after the task started: %v", elapsed.Round(time.Millisecond), err)
}

// TestExecutorStopsAtItsDeadlineBetweenBatches: a task that returns to the
// host between batches is stopped there at the executor's deadline, and
// the executor lives on.
func TestExecutorStopsAtItsDeadlineBetweenBatches(t *testing.T) {
	p := start(t)
	m := mapTask(t, "upper")
	// An endless input, in small batches.
	m.Spec.Split = &planner.Split{Generate: true, Length: 1 << 50}
	m.BatchSize = 64
	m.Timeout = 200 * time.Millisecond
	r, err := p.Run(context.Background(), m, time.Hour)
	if err != nil || r.Failure == nil || !strings.Contains(r.Err, "ran past its deadline (task.timeout = 200ms)") {
		t.Fatalf("Run = %+v, %v; want the deadline", r, err)
	}
	if r, err := p.Run(context.Background(), mapTask(t, "upper"), time.Second); err != nil || r.Failure != nil {
		t.Fatalf("the executor after a deadline: %+v, %v", r, err)
	}
}

// TestExecutorExitsWhenItsInputCloses closes an executor's input while its
// guest spins: the executor exits by itself within InputGrace. The garbage
// collector is off: a collection waiting for the spinning guest would stall
// the goroutines that notice (the agent kills such an executor after its
// own grace; TestExecutorEnforcesItsDeadline shows the stall).
func TestExecutorExitsWhenItsInputCloses(t *testing.T) {
	t.Setenv("GOGC", "off")
	p := start(t)
	if _, err := p.Run(context.Background(), mapTask(t, "upper"), time.Second); err != nil {
		t.Fatal(err)
	}
	cpu0 := cpuTime(t, p.Pid())
	done := make(chan error, 1)
	go func() {
		_, err := p.Run(context.Background(), mapTask(t, "loop"), time.Hour)
		done <- err
	}()
	// The guest spins once the executor has burned 200 ms of CPU more.
	waitUntil(t, 30*time.Second, "the guest to spin", func() bool { return cpuTime(t, p.Pid())-cpu0 > 200*time.Millisecond })
	begin := time.Now()
	p.stdin.Close()
	err := <-done
	elapsed := time.Since(begin)
	var died *DiedError
	if !errors.As(err, &died) || died.Killed || !strings.Contains(err.Error(), fmt.Sprintf("exit status %d", ExitStuck)) || !strings.Contains(err.Error(), "its input closed") {
		t.Fatalf("Run = %v, want the executor's own exit", err)
	}
	if max := InputGrace + time.Second; elapsed > max {
		t.Errorf("the executor exited %s after its input closed; want within %s", elapsed, max)
	}
}

// TestExecutorExitsWhenOrphaned starts an executor from a helper process
// that exits at once, without the parent-death signal, while the test
// keeps the executor's input open: the executor notices that its parent
// changed and exits.
func TestExecutorExitsWhenOrphaned(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	helper := exec.Command(os.Args[0])
	helper.Env = append(os.Environ(), envTestHelper+"=orphan")
	helper.Stdin = r
	out, err := helper.Output()
	r.Close()
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("helper printed %q", out)
	}
	begin := time.Now()
	waitUntil(t, 10*time.Second, "the orphaned executor to exit", func() bool { return !alive(pid) })
	t.Logf("the orphan exited %s after its parent", time.Since(begin).Round(time.Millisecond))
}

// orphanHelper starts an executor on this process's standard input
// without a parent-death signal, prints its process ID and exits.
func orphanHelper() {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fmt.Sprintf(`%s={"Parent":%d}`, EnvConfig, os.Getpid()))
	cmd.Stdin = os.Stdin
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(cmd.Process.Pid)
	os.Exit(0)
}

// TestKillTimer: an armed kill timer kills the process; a stopped one
// does not.
func TestKillTimer(t *testing.T) {
	for _, tt := range []struct {
		helper string
		killed bool
	}{{"killtimer", true}, {"killtimer-stopped", false}} {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), envTestHelper+"="+tt.helper)
		begin := time.Now()
		err := cmd.Run()
		var exit *exec.ExitError
		killed := errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
		if killed != tt.killed || (!killed && err != nil) {
			t.Errorf("%s: %v after %s; want killed = %v", tt.helper, err, time.Since(begin), tt.killed)
		}
	}
}

// killTimerHelper arms a 100 ms kill timer and waits for it (or stops it
// first and exits).
func killTimerHelper(stop bool) {
	k, err := armKillTimer(100*time.Millisecond, syscall.SIGKILL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if stop {
		k.stop()
		time.Sleep(300 * time.Millisecond) // outlive the timer
		os.Exit(0)
	}
	time.Sleep(10 * time.Second) // the timer ends the process
	os.Exit(1)
}

// cpuTime is a process's user and system CPU time.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name (which may hold spaces).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// alive reports whether pid is a process that has not exited (a zombie
// has).
func alive(pid int) bool {
	f, err := os.Open(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	i := strings.LastIndexByte(line, ')')
	return i > 0 && len(line) > i+2 && line[i+2] != 'Z' && line[i+2] != 'X'
}

// waitUntil polls cond until it holds; the deadline bounds a hang.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("waited %s for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSpawner starts an executor from a Spawner's thread, and refuses to
// once the Spawner has stopped.
func TestSpawner(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := NewSpawner()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	p, err := s.Start(ctx, []string{os.Args[0]}, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := p.Run(context.Background(), mapTask(t, "upper"), time.Second); err != nil || r.Failure != nil {
		t.Fatalf("Run = %+v, %v", r, err)
	}
	p.Close(5 * time.Second)
	cancel()
	<-done
	if _, err := s.Start(ctx, []string{os.Args[0]}, Config{}, nil); !errors.Is(err, errSpawnerStopped) {
		t.Fatalf("Start after Run = %v", err)
	}
}

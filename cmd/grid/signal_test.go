package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/guestbuild"
)

// TestRunStopsOnSignal runs `grid run` as a user does, on a job whose
// guest loops for ever (its task.timeout is the 10-minute default), and
// interrupts it once an attempt has started: it must cancel the job, kill
// the executors, remove its temporary directory, say the job was canceled
// and exit with the shell's status for the signal, within seconds. A
// second signal exits at once.
func TestRunStopsOnSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the grid binary")
	}
	bin := buildBinary(t)
	job := loopJob(t)
	for _, tt := range []struct {
		name  string
		sigs  []syscall.Signal
		code  int
		clean bool // the grid cleaned up: the temporary directory is gone
	}{
		{"SIGINT", []syscall.Signal{syscall.SIGINT}, 130, true},
		{"SIGTERM", []syscall.Signal{syscall.SIGTERM}, 143, true},
		{"SIGINT twice", []syscall.Signal{syscall.SIGINT, syscall.SIGINT}, 130, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := startRun(t, bin, job)
			start := time.Now()
			for _, sig := range tt.sigs {
				if err := r.cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-r.exited:
			case <-time.After(30 * time.Second):
				r.cmd.Process.Kill()
				<-r.exited
				t.Fatalf("grid run still runs 30 s after %v:\n%s", tt.sigs, r.stderr())
			}
			took := time.Since(start)
			if code := r.cmd.ProcessState.ExitCode(); code != tt.code {
				t.Errorf("exit status %d, want %d:\n%s", code, tt.code, r.stderr())
			}
			if tt.clean && !strings.Contains(r.stderr(), "job job-1 (loop) canceled: interrupted by "+tt.name) {
				t.Errorf("no line saying the job was canceled:\n%s", r.stderr())
			}
			t.Logf("%s: exit status %d %s after the signal", tt.name, r.cmd.ProcessState.ExitCode(), took.Round(time.Millisecond))
			// The executors die with the grid: before it exits when it
			// cleans up, by their parent-death signal when a second signal
			// cuts it short.
			if tt.clean {
				for _, p := range r.executors {
					if alive(p) {
						t.Errorf("executor %d outlived grid run", p)
					}
				}
			} else {
				waitGone(t, r.executors, 10*time.Second)
			}
			if left := marked(r.mark); len(left) > 0 {
				t.Errorf("processes of the run left: %v", left)
			}
			if tt.clean {
				if left, _ := filepath.Glob(filepath.Join(r.tmp, "wasmgrid-*")); len(left) > 0 {
					t.Errorf("temporary directories left: %v", left)
				}
			}
		})
	}
}

// buildBinary builds the grid command into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "grid")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// loopJob writes a job whose one map function never returns.
func loopJob(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	guest := filepath.Join(dir, "t.wasm")
	if err := guestbuild.BuildGo(context.Background(), abs(t, "wasmexec/testdata/testguest"), guest); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "job.toml")
	text := "name = \"loop\"\n[modules.t]\npath = \"t.wasm\"\n[source]\ninline = [\"a\", \"b\"]\n[[steps]]\nmap = \"t.loop\"\n[sink]\ntext = \"-\"\n"
	if err := os.WriteFile(spec, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return spec
}

// gridRun is a `grid run` process whose attempt has started.
type gridRun struct {
	cmd       *exec.Cmd
	exited    chan struct{} // closed when it has exited and its stderr is read
	tmp       string        // its TMPDIR
	mark      string        // in the environment of it and its children
	executors []int         // its children once the attempt started

	mu  sync.Mutex
	err bytes.Buffer // its stderr
}

func (r *gridRun) stderr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err.String()
}

// startRun starts `grid run` on job and returns once its agent has
// started an attempt in an executor, as its log says.
func startRun(t *testing.T, bin, job string) *gridRun {
	t.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	r := &gridRun{exited: make(chan struct{}), tmp: t.TempDir(), mark: "WASMGRID_TEST_RUN=" + hex.EncodeToString(b)}
	r.cmd = exec.Command(bin, "run", job, "--slots", "2", "--progress", "none", "--log-level", "debug")
	r.cmd.Env = append(os.Environ(), "TMPDIR="+r.tmp, r.mark)
	r.cmd.Stdout = io.Discard
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	go func() {
		first := started
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			r.mu.Lock()
			fmt.Fprintln(&r.err, sc.Text())
			r.mu.Unlock()
			// The agent logs "task started", then starts the tenant's
			// executor and logs its pid, then sends it the attempt.
			if first != nil && strings.Contains(sc.Text(), `msg="executor started"`) {
				if _, after, ok := strings.Cut(sc.Text(), " pid="); ok {
					pid, _ := strconv.Atoi(strings.Fields(after)[0])
					r.executors = append(r.executors, pid)
				}
				close(first)
				first = nil
			}
		}
		r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.exited
	})
	select {
	case <-started:
	case <-r.exited:
		t.Fatalf("grid run exited before an attempt started:\n%s", r.stderr())
	case <-time.After(2 * time.Minute):
		t.Fatalf("no attempt started within 2 minutes:\n%s", r.stderr())
	}
	if len(r.executors) == 0 || !slices.Contains(children(r.cmd.Process.Pid), r.executors[0]) {
		t.Fatalf("the executor of the log, %v, is not a child of grid run:\n%s", r.executors, r.stderr())
	}
	return r
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	var out []int
	for _, p := range pids() {
		if ppid, err := parentOf(p); err == nil && ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

// marked lists the live processes whose environment holds mark.
func marked(mark string) []int {
	var out []int
	for _, p := range pids() {
		env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "environ"))
		if err == nil && bytes.Contains(env, []byte(mark)) && !zombie(p) {
			out = append(out, p)
		}
	}
	return out
}

// waitGone waits until none of pids is a live process.
func waitGone(t *testing.T, pids []int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, p := range pids {
		for alive(p) {
			if time.Now().After(deadline) {
				t.Errorf("executor %d still runs %s after grid run exited", p, within)
				return
			}
			time.Sleep(20 * time.Millisecond) // polling /proc: nothing to wait on
		}
	}
}

func alive(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	return err == nil && !zombie(pid)
}

func pids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if p, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// stat returns the fields of /proc/PID/stat after the command's name.
func stat(pid int) ([]string, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, errors.New("malformed stat")
	}
	return strings.Fields(string(b[i+1:])), nil
}

func parentOf(pid int) (int, error) {
	f, err := stat(pid)
	if err != nil || len(f) < 2 {
		return 0, errors.Join(err, errors.New("short stat"))
	}
	return strconv.Atoi(f[1])
}

func zombie(pid int) bool {
	f, err := stat(pid)
	return err == nil && len(f) > 0 && f[0] == "Z"
}

package executor

import (
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is an executor child process, seen from its agent. Run sends it a
// task attempt and waits for the outcome; if the process dies, every attempt
// it was running fails with the cause, and the agent starts another.
type Process struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tail
	logger *slog.Logger

	encMu sync.Mutex // protects enc
	enc   *gob.Encoder

	mu      sync.Mutex // protects the fields below
	nextID  uint64
	pending map[uint64]chan Response
	killed  error // why the agent killed the process, if it did

	done chan struct{} // closed when the process has exited and its output is read
	dead error         // why it ended; set before done is closed
}

// StartProcess starts an executor: argv[0] with the rest of argv as
// arguments, and cfg in its environment. The program must call
// MainIfExecutor before anything else. The executor dies with this
// process (see sysProcAttr); agents, which run for long, start theirs
// with a Spawner.
func StartProcess(argv []string, cfg Config, logger *slog.Logger) (*Process, error) {
	return startProcess(argv, cfg, logger, startLocked)
}

func startProcess(argv []string, cfg Config, logger *slog.Logger, start func(*exec.Cmd) error) (*Process, error) {
	if cfg.Parent == 0 {
		cfg.Parent = os.Getpid()
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), EnvConfig+"="+string(js))
	cmd.SysProcAttr = sysProcAttr()
	p := &Process{cmd: cmd, stderr: &tail{max: 64 << 10}, logger: logger, pending: map[uint64]chan Response{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		p.stdin.Close()
		return nil, err
	}
	if err := start(cmd); err != nil {
		p.stdin.Close()
		stdout.Close()
		return nil, fmt.Errorf("start executor %s: %w", argv[0], err)
	}
	p.enc = gob.NewEncoder(p.stdin)
	go p.read(stdout)
	return p, nil
}

// Pid is the executor's process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// read delivers responses until the process's output ends, then reaps the
// process and fails whatever was still pending.
func (p *Process) read(stdout io.Reader) {
	dec := gob.NewDecoder(stdout)
	var readErr error
	for {
		var r Response
		if readErr = dec.Decode(&r); readErr != nil {
			break
		}
		p.mu.Lock()
		ch := p.pending[r.ID]
		if !r.Compiled {
			delete(p.pending, r.ID)
		}
		p.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
	waitErr := p.cmd.Wait()
	var exit *exec.ExitError
	p.mu.Lock()
	switch {
	case p.killed != nil:
		p.dead = p.killed
	case errors.As(waitErr, &exit) && exit.ExitCode() == ExitDeadline:
		// The executor enforced a deadline itself (its agent did not):
		// the other attempts were killed for that one's sake.
		p.killed = fmt.Errorf("executor process %d stopped itself%s", p.cmd.Process.Pid, p.stderrTail())
		p.dead = p.killed
	case errors.As(waitErr, &exit) && signaled(exit, syscall.SIGTERM):
		// Its deadline timer (nobody else signals an executor, which has
		// a process group of its own).
		p.killed = fmt.Errorf("executor process %d was ended by its deadline timer: an attempt ran more than %s past its deadline (task.timeout), and its guest, which runs without termination checks, kept the executor from exiting by itself", p.cmd.Process.Pid, DeadlineGrace+DeadlineSignalDelay)
		p.dead = p.killed
	case waitErr != nil:
		p.dead = fmt.Errorf("executor process %d died (%v)%s", p.cmd.Process.Pid, waitErr, p.stderrTail())
	case !errors.Is(readErr, io.EOF):
		p.dead = fmt.Errorf("executor process %d sent a bad response: %v", p.cmd.Process.Pid, readErr)
	default:
		p.dead = fmt.Errorf("executor process %d exited", p.cmd.Process.Pid)
	}
	for id, ch := range p.pending {
		close(ch)
		delete(p.pending, id)
	}
	p.mu.Unlock()
	close(p.done)
}

func (p *Process) stderrTail() string {
	s := strings.TrimSpace(p.stderr.String())
	if s == "" {
		return ""
	}
	if i := strings.LastIndex(s[:min(len(s), 2048)], "\n"); len(s) > 2048 && i > 0 {
		s = s[:i] + "\n…"
	}
	return ": " + s
}

// signaled reports whether a process ended by sig.
func signaled(exit *exec.ExitError, sig syscall.Signal) bool {
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// DiedError is the failure of an attempt whose executor died under it.
type DiedError struct {
	Cause error
	// Killed says the agent killed the executor (for another attempt's
	// sake, or to stop this one), rather than the executor crashing.
	Killed bool
}

func (e *DiedError) Error() string { return e.Cause.Error() }
func (e *DiedError) Unwrap() error { return e.Cause }

// Run runs one task attempt. It returns the executor's response, or a
// *DiedError if the process ended before answering. When ctx ends, Run asks
// the executor to stop the attempt and waits up to grace for it to do so
// before it kills the process.
func (p *Process) Run(ctx context.Context, m *TaskMsg, grace time.Duration) (Response, error) {
	ch := make(chan Response, 1)
	p.mu.Lock()
	if p.dead != nil {
		p.mu.Unlock()
		return Response{}, p.diedError()
	}
	p.nextID++
	id := p.nextID
	p.pending[id] = ch
	p.mu.Unlock()
	if err := p.send(Request{ID: id, Run: m}); err != nil {
		// The pipe is broken: the process is dying or dead, and reaping it
		// fails this attempt with the reason. Make sure it is dead.
		p.cmd.Process.Kill()
	}
	select {
	case r, ok := <-ch:
		if ok {
			return r, nil
		}
		return Response{}, p.diedError()
	case <-ctx.Done():
	}
	// Asked to stop: the guest runs without termination checks, so the
	// executor notices between two batches; a guest stuck inside one call
	// never does, and then the process goes.
	p.send(Request{ID: id, Cancel: true})
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case r, ok := <-ch:
		if ok {
			return r, nil
		}
		return Response{}, p.diedError()
	case <-timer.C:
		p.Kill(fmt.Errorf("executor process %d stopped: task %s did not stop within %s (%v)", p.cmd.Process.Pid, m.Spec.Key, grace, context.Cause(ctx)))
	}
	if r, ok := <-ch; ok {
		return r, nil
	}
	return Response{}, p.diedError()
}

// PeerLost tells the executor that an agent was declared lost: its
// attempts stop fetching from the agent's block server at once. An
// executor that has died has nothing to stop. It blocks only while the
// executor's input pipe is full.
func (p *Process) PeerLost(agent, blockAddr string) {
	p.mu.Lock()
	dead := p.dead != nil
	p.mu.Unlock()
	if !dead {
		_ = p.send(Request{PeerLost: &PeerLostMsg{Agent: agent, BlockAddr: blockAddr}})
	}
}

// Describe loads a module in the executor and returns what it declares.
// Compiling may take up to compileTimeout, and the module's initialization
// up to initTimeout: the executor enforces its own LoadTimeout where it can,
// and this is the backstop for what it cannot stop (a compile, a guest
// without termination checks, a call tree that never returns), after which
// the process is killed.
func (p *Process) Describe(ctx context.Context, d DescribeMsg, compileTimeout, initTimeout time.Duration) (*ModuleInfo, error) {
	ch := make(chan Response, 2)
	p.mu.Lock()
	if p.dead != nil {
		p.mu.Unlock()
		return nil, p.diedError()
	}
	p.nextID++
	id := p.nextID
	p.pending[id] = ch
	p.mu.Unlock()
	if err := p.send(Request{ID: id, Describe: &d}); err != nil {
		p.cmd.Process.Kill()
	}
	timer := time.NewTimer(compileTimeout)
	defer timer.Stop()
	compiled := false
	for {
		select {
		case r, ok := <-ch:
			if !ok {
				return nil, p.diedError()
			}
			if r.Compiled {
				compiled = true
				timer.Reset(initTimeout)
				continue
			}
			if r.Module == nil {
				return nil, errors.New(r.Err)
			}
			return r.Module, nil
		case <-timer.C:
			err := &StoppedError{Compiling: !compiled}
			p.Kill(fmt.Errorf("module %s: %w", d.Module.Name, err))
			<-p.done
			return nil, err
		case <-ctx.Done():
			p.Kill(fmt.Errorf("module %s: reading its manifest was canceled: %w", d.Module.Name, context.Cause(ctx)))
			<-p.done
			return nil, context.Cause(ctx)
		}
	}
}

// StoppedError is a Describe whose module took too long to compile or to
// initialize: the executor was killed.
type StoppedError struct {
	Compiling bool // it was still compiling
}

func (e *StoppedError) Error() string {
	if e.Compiling {
		return "compiling the module took too long; the executor was stopped"
	}
	return "initializing the module took too long; the executor was stopped"
}

// diedError waits for the process to be reaped and says why it ended.
func (p *Process) diedError() error {
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return &DiedError{Cause: p.dead, Killed: p.killed != nil}
}

func (p *Process) send(r Request) error {
	p.encMu.Lock()
	defer p.encMu.Unlock()
	return p.enc.Encode(r)
}

// Kill ends the process at once; the attempts it was running fail with
// cause. Killing a dead process does nothing.
func (p *Process) Kill(cause error) {
	p.mu.Lock()
	if p.killed == nil && p.dead == nil {
		p.killed = cause
		p.cmd.Process.Kill()
	}
	p.mu.Unlock()
}

// Close asks the executor to finish its attempts and exit, and waits for it
// up to grace before it kills it.
func (p *Process) Close(grace time.Duration) error {
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill(errors.New("executor did not exit when asked"))
		<-p.done
	}
	return nil
}

// tail keeps the last max bytes written to it; safe for concurrent use.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

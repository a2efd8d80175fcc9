package executor

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/planner"
	"github.com/wasmgrid/wasmgrid/wasmexec"
)

// MainIfExecutor turns this process into an executor, and exits when the
// executor ends, if its agent started it as one (EnvConfig is set). Every
// program that can host an agent calls it first thing: the grid binary in
// main, test binaries in TestMain.
func MainIfExecutor() {
	v, ok := os.LookupEnv(EnvConfig)
	if !ok {
		return
	}
	var cfg Config
	if err := json.Unmarshal([]byte(v), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "executor: bad %s: %v\n", EnvConfig, err)
		os.Exit(2)
	}
	os.Exit(Main(cfg))
}

// Main runs an executor on standard input and output until its agent
// closes standard input, and returns the exit status. Whatever its guests
// do, it does not outlive its agent: besides the parent-death signal its
// agent asks the kernel for, it exits (ExitOrphaned) when its parent
// changes, and (ExitStuck) when its input has closed and its attempts have
// not stopped within InputGrace, which a guest spinning without
// termination checks never does.
func Main(cfg Config) int {
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	// The agent stops its executors by closing their input; a signal to
	// the process group (Ctrl-C in a terminal) must not kill running tasks
	// before the agent has decided what to do with them.
	signal.Ignore(syscall.SIGINT)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if cfg.Tenant != "" {
		logger = logger.With("tenant", cfg.Tenant)
	}
	parent := cfg.Parent
	if parent == 0 {
		parent = os.Getppid()
	}
	if os.Getppid() != parent {
		fmt.Fprintf(os.Stderr, "executor: its agent (process %d) is gone; exiting\n", parent)
		return ExitOrphaned
	}
	in := &eofNotifier{r: os.Stdin, closed: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- serve(context.Background(), in, os.Stdout, cfg, logger, exitNow) }()
	orphaned := make(chan struct{})
	go watchParent(parent, 100*time.Millisecond, orphaned)
	result := func(err error) int {
		if err != nil {
			logger.Error("executor stopped", "err", err)
			return 1
		}
		return 0
	}
	select {
	case err := <-served:
		return result(err)
	case <-in.closed:
		t := time.NewTimer(InputGrace)
		select {
		case err := <-served:
			return result(err)
		case <-t.C:
			fmt.Fprintf(os.Stderr, "executor: its input closed and its attempts did not stop within %s (a guest without termination checks cannot be stopped); exiting\n", InputGrace)
			return ExitStuck
		case <-orphaned:
		}
	case <-orphaned:
	}
	fmt.Fprintf(os.Stderr, "executor: its agent (process %d) is gone; exiting\n", parent)
	return ExitOrphaned
}

// exitNow ends the process with a message: an executor's last resort.
func exitNow(code int, msg string) {
	fmt.Fprintln(os.Stderr, "executor: "+msg)
	os.Exit(code)
}

// watchParent closes orphaned when this process's parent is no longer
// parent: the kernel gave the process to init or a subreaper. The owner of
// the goroutine is the process, which exits when it returns.
func watchParent(parent int, every time.Duration, orphaned chan<- struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		if os.Getppid() != parent {
			close(orphaned)
			return
		}
	}
}

// eofNotifier closes closed when its reader ends (EOF or an error).
type eofNotifier struct {
	r      io.Reader
	once   sync.Once
	closed chan struct{}
}

func (e *eofNotifier) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.closed) })
	}
	return n, err
}

// Serve answers requests from in on out until in ends, running tasks
// concurrently, then stops the tasks and waits for them. Guests run without
// termination checks (fast); a task that passes its deadline is stopped by
// the agent, which kills this process, or by the executor itself, which
// exits (ExitDeadline).
func Serve(ctx context.Context, in io.Reader, out io.Writer, cfg Config, logger *slog.Logger) error {
	return serve(ctx, in, out, cfg, logger, exitNow)
}

// serve is Serve with the function that ends the process when an attempt
// outlives its deadline by DeadlineGrace.
func serve(ctx context.Context, in io.Reader, out io.Writer, cfg Config, logger *slog.Logger, exit func(code int, msg string)) error {
	rt, err := wasmexec.NewRuntime(ctx, wasmexec.Config{CacheDir: cfg.CacheDir, NoInterrupt: !cfg.Interruptible, Limits: cfg.Limits, LoadTimeout: cfg.LoadTimeout, Logger: logger})
	if err != nil {
		return err
	}
	defer rt.Close(context.WithoutCancel(ctx))
	s := &server{rt: rt, enc: gob.NewEncoder(out), logger: logger, exit: exit, tasks: map[uint64]context.CancelCauseFunc{}, modules: map[string]*loadedModule{}, fetchers: &fetchers{caPEM: cfg.ShuffleCA, certPEM: cfg.ShuffleCert, keyPEM: cfg.ShuffleKey}}
	defer s.fetchers.close()
	defer s.stores.Close()
	dec := gob.NewDecoder(in)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancelAll := context.WithCancel(ctx)
	defer cancelAll()
	for {
		var req Request
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read request: %w", err)
		}
		switch {
		case req.Describe != nil:
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.send(s.describe(ctx, req.ID, req.Describe)); err != nil {
					logger.Error("send response", "module", req.Describe.Module.Name, "err", err)
				}
			}()
		case req.Run != nil:
			// Watched now, in the order of the requests: a loss that
			// came before the attempt does not concern it.
			lost := s.losses.watch(req.Run.BlockServers)
			tctx, cancel := context.WithCancelCause(ctx)
			s.mu.Lock()
			s.tasks[req.ID] = cancel
			s.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer cancel(nil)
				stop := s.deadline(req.Run, cancel)
				resp := s.run(tctx, req.ID, req.Run, lost)
				stop()
				s.mu.Lock()
				delete(s.tasks, req.ID)
				s.mu.Unlock()
				if err := s.send(resp); err != nil {
					logger.Error("send response", "task", req.Run.Spec.Key.String(), "err", err)
				}
			}()
		case req.PeerLost != nil:
			logger.Info("block server lost: its fetches stop", "agent", req.PeerLost.Agent, "addr", req.PeerLost.BlockAddr)
			s.losses.lose(req.PeerLost.Agent, req.PeerLost.BlockAddr)
			s.fetchers.interrupt(req.PeerLost.BlockAddr)
		case req.Cancel:
			s.mu.Lock()
			if cancel := s.tasks[req.ID]; cancel != nil {
				cancel(errCanceledByAgent)
			}
			s.mu.Unlock()
		}
	}
}

var (
	errCanceledByAgent = errors.New("canceled by the agent")
	errPastDeadline    = errors.New("the attempt passed its deadline")
)

// deadline enforces an attempt's timeout from inside the executor: at the
// deadline it cancels the attempt (a guest between two batches stops
// there), and DeadlineGrace later it ends the process with a message. A
// spinning guest soon stalls every goroutine (see killTimer), so the
// kernel backs both up: SIGTERM half a second later, SIGKILL a second
// after that. The returned function, called when the attempt ends,
// disarms them all.
func (s *server) deadline(m *TaskMsg, cancel context.CancelCauseFunc) (stop func()) {
	if m.Timeout <= 0 {
		return func() {}
	}
	what := fmt.Sprintf("task %s attempt %d", m.Spec.Key, m.Spec.Attempt)
	var mu sync.Mutex // protects exitTimer
	var exitTimer *time.Timer
	stopped := false
	cancelTimer := time.AfterFunc(m.Timeout, func() {
		cancel(errPastDeadline)
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		exitTimer = time.AfterFunc(DeadlineGrace, func() {
			s.exit(ExitDeadline, fmt.Sprintf("%s ran past its deadline (task.timeout = %s) and did not stop within %s of it (its guest runs without termination checks): exiting", what, m.Timeout, DeadlineGrace))
		})
	})
	var kills []*killTimer
	for _, k := range []struct {
		after time.Duration
		sig   syscall.Signal
	}{{DeadlineGrace + DeadlineSignalDelay, syscall.SIGTERM}, {DeadlineGrace + DeadlineSignalDelay + time.Second, syscall.SIGKILL}} {
		kill, err := armKillTimer(m.Timeout+k.after, k.sig)
		if err != nil {
			s.logger.Warn("no kernel backstop for the deadline", "task", what, "err", err)
			break
		}
		kills = append(kills, kill)
	}
	return func() {
		cancelTimer.Stop()
		mu.Lock()
		stopped = true
		if exitTimer != nil {
			exitTimer.Stop()
		}
		mu.Unlock()
		for _, k := range kills {
			k.stop()
		}
	}
}

type server struct {
	rt       *wasmexec.Runtime
	fetchers *fetchers
	losses   losses
	stores   storage.Cache // the tenant's volumes
	logger   *slog.Logger
	exit     func(code int, msg string) // ends the process

	encMu sync.Mutex // protects enc
	enc   *gob.Encoder

	mu      sync.Mutex // protects tasks, modules and uses
	tasks   map[uint64]context.CancelCauseFunc
	modules map[string]*loadedModule // by hash
	uses    uint64                   // a clock of module uses, for eviction
}

// loadedModule is a module in the executor's runtime and its users.
type loadedModule struct {
	m       *wasmexec.Module
	users   int    // running attempts that use it
	lastUse uint64 // when it was last used, by server.uses
}

// maxIdleModules is how many modules that no running attempt uses an
// executor keeps loaded: each holds its machine code (12 MiB for the Go
// word-count guest), which counts in the executor's memory; the
// compilation cache makes loading one again cheap.
const maxIdleModules = 4

func (s *server) send(r Response) error {
	s.encMu.Lock()
	defer s.encMu.Unlock()
	return s.enc.Encode(r)
}

func (s *server) run(ctx context.Context, id uint64, m *TaskMsg, lost map[string]context.Context) Response {
	resp := Response{ID: id}
	// Before the response, so that the memory is gone when the agent
	// lowers the executor's limit.
	defer s.releaseMemory()
	mods, err := s.load(ctx, m.Spec, m.Modules, m.MemoryBytes)
	defer s.unuse(m.Modules)
	if err == nil {
		task := &Task{
			Spec:     m.Spec,
			Modules:  mods,
			Settings: m.Settings,
			Blocks:   quicBlocks{fetchers: s.fetchers, job: m.Job, token: m.Token, peers: m.BlockServers, lost: lost},
			Stores:   &s.stores,
		}
		resp.Result, err = Run(ctx, s.rt, task)
		if resp.Result != nil {
			resp.Log = resp.Result.Log
			resp.Result.PeakRSS = peakRSS()
		}
	}
	if err != nil {
		f := FailureOf(err)
		if errors.Is(context.Cause(ctx), errPastDeadline) {
			// Stopped between two batches by the executor's own deadline.
			err = fmt.Errorf("task %s attempt %d: ran past its deadline (task.timeout = %s) and was stopped", m.Spec.Key, m.Spec.Attempt, m.Timeout)
			f = planner.Failure{Kind: planner.TaskError, Msg: err.Error()}
		}
		resp.Failure = &f
		resp.Err = err.Error()
		var e *Error
		if errors.As(err, &e) {
			resp.Log = e.Log
		}
	}
	return resp
}

// describe loads a module and answers with its manifest.
func (s *server) describe(ctx context.Context, id uint64, d *DescribeMsg) Response {
	resp := Response{ID: id}
	b, err := os.ReadFile(d.Module.Path)
	if err == nil {
		err = s.rt.Compile(ctx, d.Module.Name, b)
	}
	if err == nil {
		err = s.send(Response{ID: id, Compiled: true})
	}
	if err == nil {
		var m *wasmexec.Module
		if m, err = s.rt.LoadLimited(ctx, d.Module.Name, b, d.MemoryBytes); err == nil {
			resp.Module = &ModuleInfo{Functions: m.Functions, MemoryPages: m.MemoryPages}
			s.mu.Lock()
			if s.modules[m.Hash] == nil {
				s.uses++
				s.modules[m.Hash] = &loadedModule{m: m, lastUse: s.uses}
			}
			s.mu.Unlock()
			return resp
		}
	}
	resp.Err = err.Error()
	return resp
}

// load returns the task's modules, reading and compiling each hash once,
// and counts the task among their users; unuse, called whatever load
// returned, uncounts it.
func (s *server) load(ctx context.Context, spec planner.TaskSpec, files []ModuleFile, memory uint64) (map[string]*wasmexec.Module, error) {
	out := make(map[string]*wasmexec.Module, len(files))
	for _, f := range files {
		s.mu.Lock()
		lm := s.modules[f.Hash]
		if lm == nil {
			lm = &loadedModule{}
			s.modules[f.Hash] = lm
		}
		lm.users++
		s.uses++
		lm.lastUse = s.uses
		m := lm.m
		s.mu.Unlock()
		if m == nil {
			b, err := os.ReadFile(f.Path)
			if err != nil {
				return nil, classify(spec, fmt.Errorf("read module %s: %w", f.Name, err))
			}
			// Concurrent loads of one module compile it once.
			if m, err = s.rt.LoadLimited(ctx, f.Name, b, memory); err != nil {
				return nil, classify(spec, err)
			}
			if m.Hash != f.Hash {
				return nil, classify(spec, fmt.Errorf("module %s: file %s has sha256 %s, want %s", f.Name, f.Path, m.Hash, f.Hash))
			}
			// Later tasks of this executor start from the state the
			// module's initialization leaves, run once here.
			if err := s.rt.Preinitialize(ctx, m, wasmexec.Limits{MemoryBytes: memory}); err != nil {
				s.logger.Info("the module initializes for every task", "module", f.Name, "sha256", m.ShortHash(), "reason", err)
			}
			s.mu.Lock()
			lm.m = m
			s.mu.Unlock()
		}
		out[f.Name] = m
	}
	return out, nil
}

// unuse uncounts an attempt among its modules' users and unloads the
// least recently used modules that nobody uses beyond maxIdleModules.
func (s *server) unuse(files []ModuleFile) {
	s.mu.Lock()
	for _, f := range files {
		if lm := s.modules[f.Hash]; lm != nil {
			lm.users--
		}
	}
	var idle []string
	for h, lm := range s.modules {
		if lm.users <= 0 {
			idle = append(idle, h)
		}
	}
	slices.SortFunc(idle, func(a, b string) int { return cmp.Compare(s.modules[a].lastUse, s.modules[b].lastUse) })
	// Unloaded with s.mu held, so that a load of the same module waits
	// and then loads it afresh rather than get the one being closed.
	defer s.mu.Unlock()
	for _, h := range idle[:max(len(idle)-maxIdleModules, 0)] {
		if m := s.modules[h].m; m != nil {
			if err := s.rt.Unload(context.Background(), m); err != nil {
				s.logger.Warn("unload module", "sha256", m.Hash, "err", err)
			}
		}
		delete(s.modules, h)
	}
}

// releaseMemory returns the memory a finished attempt's host side held to
// the system, so that the executor's resident memory falls with its
// reservation. It forces a garbage collection, which waits for every
// guest to reach a safe point: only done when no other attempt runs,
// since a spinning guest would hold the answer up.
func (s *server) releaseMemory() {
	s.mu.Lock()
	alone := len(s.tasks) <= 1
	s.mu.Unlock()
	if !alone {
		return
	}
	// Live objects, garbage and free pages not yet returned: a few MiB
	// for an executor between attempts, ~90 MiB after compiling the Go
	// word-count guest.
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(sample)
	var heap uint64
	for _, v := range sample {
		if v.Value.Kind() == metrics.KindUint64 {
			heap += v.Value.Uint64()
		}
	}
	if heap >= releaseAbove {
		debug.FreeOSMemory()
	}
}

// releaseAbove is the heap above which an executor returns what it can to
// the system after an attempt.
const releaseAbove = 16 << 20

// FailureOf is the scheduler's view of a failed attempt's error.
func FailureOf(err error) planner.Failure {
	var e *Error
	if errors.As(err, &e) {
		return e.Failure
	}
	return planner.Failure{Kind: planner.TaskError, Msg: err.Error()}
}

// sha256File is the hex sha256 of a file's bytes.
func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// peakRSS is this process's peak resident set size in bytes.
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss << 10 // kilobytes on Linux
}

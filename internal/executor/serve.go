package executor

import (
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
	"sync"
	"syscall"

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
// closes standard input, and returns the exit status.
func Main(cfg Config) int {
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	// The agent stops its executors by closing their input; a signal to
	// the process group (Ctrl-C in a terminal) must not kill running tasks
	// before the agent has decided what to do with them.
	signal.Ignore(syscall.SIGINT)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := Serve(context.Background(), os.Stdin, os.Stdout, cfg, logger); err != nil {
		logger.Error("executor stopped", "err", err)
		return 1
	}
	return 0
}

// Serve answers requests from in on out until in ends, running tasks
// concurrently. Guests run without termination checks (fast); a task that
// passes its deadline is stopped by the agent, which kills this process.
func Serve(ctx context.Context, in io.Reader, out io.Writer, cfg Config, logger *slog.Logger) error {
	rt, err := wasmexec.NewRuntime(ctx, wasmexec.Config{CacheDir: cfg.CacheDir, NoInterrupt: !cfg.Interruptible, Limits: cfg.Limits, LoadTimeout: cfg.LoadTimeout, Logger: logger})
	if err != nil {
		return err
	}
	defer rt.Close(context.WithoutCancel(ctx))
	s := &server{rt: rt, enc: gob.NewEncoder(out), tasks: map[uint64]context.CancelFunc{}, modules: map[string]*wasmexec.Module{}, fetchers: &fetchers{caPEM: cfg.ShuffleCA, certPEM: cfg.ShuffleCert, keyPEM: cfg.ShuffleKey}}
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
			tctx, cancel := context.WithCancel(ctx)
			s.mu.Lock()
			s.tasks[req.ID] = cancel
			s.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer cancel()
				resp := s.run(tctx, req.ID, req.Run)
				s.mu.Lock()
				delete(s.tasks, req.ID)
				s.mu.Unlock()
				if err := s.send(resp); err != nil {
					logger.Error("send response", "task", req.Run.Spec.Key.String(), "err", err)
				}
			}()
		case req.Cancel:
			s.mu.Lock()
			if cancel := s.tasks[req.ID]; cancel != nil {
				cancel()
			}
			s.mu.Unlock()
		}
	}
}

type server struct {
	rt       *wasmexec.Runtime
	fetchers *fetchers
	stores   storage.Cache // the tenant's volumes

	encMu sync.Mutex // protects enc
	enc   *gob.Encoder

	mu      sync.Mutex // protects tasks and modules
	tasks   map[uint64]context.CancelFunc
	modules map[string]*wasmexec.Module // by hash
}

func (s *server) send(r Response) error {
	s.encMu.Lock()
	defer s.encMu.Unlock()
	return s.enc.Encode(r)
}

func (s *server) run(ctx context.Context, id uint64, m *TaskMsg) Response {
	resp := Response{ID: id}
	mods, err := s.load(ctx, m.Spec, m.Modules, m.MemoryBytes)
	if err == nil {
		task := &Task{
			Spec:     m.Spec,
			Modules:  mods,
			Settings: m.Settings,
			Blocks:   quicBlocks{fetchers: s.fetchers, job: m.Job, token: m.Token, peers: m.BlockServers},
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
			s.modules[m.Hash] = m
			s.mu.Unlock()
			return resp
		}
	}
	resp.Err = err.Error()
	return resp
}

// load returns the task's modules, reading and compiling each hash once.
func (s *server) load(ctx context.Context, spec planner.TaskSpec, files []ModuleFile, memory uint64) (map[string]*wasmexec.Module, error) {
	out := make(map[string]*wasmexec.Module, len(files))
	for _, f := range files {
		s.mu.Lock()
		m := s.modules[f.Hash]
		s.mu.Unlock()
		if m == nil {
			b, err := os.ReadFile(f.Path)
			if err != nil {
				return nil, classify(spec, fmt.Errorf("read module %s: %w", f.Name, err))
			}
			if m, err = s.rt.LoadLimited(ctx, f.Name, b, memory); err != nil {
				return nil, classify(spec, err)
			}
			if m.Hash != f.Hash {
				return nil, classify(spec, fmt.Errorf("module %s: file %s has sha256 %s, want %s", f.Name, f.Path, m.Hash, f.Hash))
			}
			s.mu.Lock()
			s.modules[f.Hash] = m
			s.mu.Unlock()
		}
		out[f.Name] = m
	}
	return out, nil
}

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

package grid

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/executor"
	"github.com/wasmgrid/wasmgrid/wasmexec"
)

// inspector reads modules' manifests at submission, each in an executor
// process of its own: the coordinator never runs guest code, so a module
// whose initialization spins, recurses or allocates without end costs a
// killed child process, not a stalled coordinator, and never disturbs the
// reading of another job's modules. (A process costs a few milliseconds to
// start, and its compile is a cache hit after the first.)
type inspector struct {
	argv           []string
	cfg            executor.Config
	dir            string        // where modules are stored for the process to read
	loadTimeout    time.Duration // what the user is told
	compileTimeout time.Duration // backstops: when to give up on a module
	initTimeout    time.Duration // and kill the process
	logger         *slog.Logger
	// memoryCap, if not 0, bounds the memory a module's initialization
	// gets, whatever the job's task.memory: many inspectors of hostile
	// modules then cost a known amount.
	memoryCap uint64
	// slots holds a token per process running; queue bounds the reads
	// waiting for one (0: no bound), past which a read is a busyError.
	slots   chan struct{}
	queue   int
	waiting atomic.Int64

	mu    sync.Mutex
	known map[describeKey]*executor.ModuleInfo // manifests read, by module and memory limit
}

// newInspector sets up the manifest readers of a coordinator, embedded or
// not: processes of argv reading modules from dir, with cacheDir's compiled
// code, at most slots at once and queue waiting (0: no bound), each
// module's initialization given loadTimeout and, if memoryCap is not 0, at
// most memoryCap of memory.
func newInspector(argv []string, cacheDir, dir string, limits wasmexec.ModuleLimits, loadTimeout time.Duration, memoryCap uint64, slots, queue int, logger *slog.Logger) *inspector {
	in := &inspector{
		argv: argv,
		cfg:  executor.Config{CacheDir: cacheDir, Limits: limits, LoadTimeout: loadTimeout, Interruptible: true},
		dir:  dir,
		// Compiling cannot be interrupted and is not part of the load
		// timeout: it may take as long as the largest module the limits
		// admit needs. The executor stops an initialization at the load
		// timeout where it can; the backstop gives it a little longer.
		loadTimeout:    loadTimeout,
		compileTimeout: compileAllowance,
		initTimeout:    loadTimeout + loadTimeout/2,
		logger:         logger.With("role", "inspector"),
		memoryCap:      memoryCap,
		slots:          make(chan struct{}, slots),
		queue:          queue,
	}
	if memoryCap > 0 {
		in.cfg.MemoryLimit = inspectorGoLimit(memoryCap)
	}
	return in
}

// busyError is a manifest read refused because every inspector is busy
// and the queue is full: the submission is retried later (503).
type busyError struct {
	running, waiting int
	retryAfter       time.Duration
}

func (e *busyError) Error() string {
	return fmt.Sprintf("the coordinator is reading %d modules' manifests and %d more wait (limits.inspectors, limits.inspector_queue): submit again in %s", e.running, e.waiting, e.retryAfter)
}

// acquire waits for an inspector process slot, unless the queue is full.
func (in *inspector) acquire(ctx context.Context) (release func(), err error) {
	if in.slots == nil {
		return func() {}, nil // no bound
	}
	release = func() { <-in.slots }
	select {
	case in.slots <- struct{}{}:
		return release, nil
	default:
	}
	n := in.waiting.Add(1)
	defer in.waiting.Add(-1)
	if in.queue > 0 && n > int64(in.queue) {
		// Every read ahead takes up to the load timeout; most far less.
		retry := time.Duration(n/int64(cap(in.slots))+1) * time.Second
		return nil, &busyError{running: cap(in.slots), waiting: int(n - 1), retryAfter: min(retry, time.Minute)}
	}
	select {
	case in.slots <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

type describeKey struct {
	hash   string
	memory uint64
}

// maxKnown bounds the manifests the inspector remembers.
const maxKnown = 4096

// describe returns what a module declares. A module read before under the
// same memory limit is not run again: its manifest is a function of its
// bytes, and a second run would cost a process, a compile-cache load and
// the module's initialization on every submission (which on a machine
// saturated by other jobs could even run past the load timeout).
func (in *inspector) describe(ctx context.Context, b moduleBlob, memory uint64) (*executor.ModuleInfo, error) {
	capped := in.memoryCap > 0 && memory > in.memoryCap
	if capped {
		memory = in.memoryCap
	}
	key := describeKey{b.Hash, memory}
	in.mu.Lock()
	info := in.known[key]
	in.mu.Unlock()
	if info != nil {
		return info, nil
	}
	release, err := in.acquire(ctx)
	if err != nil {
		return nil, err
	}
	info, err = in.read(ctx, b, memory)
	release()
	if err != nil && capped && strings.Contains(err.Error(), "memory") {
		// Raising task.memory would not help.
		msg := strings.ReplaceAll(err.Error(), " (raise task.memory)", "")
		err = &wrapped{fmt.Sprintf("%s: manifests are read within %d MiB, the inspector's memory cap (limits.inspector_memory), whatever task.memory: the module's initialization must fit in it", msg, memory>>20), err}
	}
	if err == nil {
		in.mu.Lock()
		if in.known == nil || len(in.known) >= maxKnown {
			in.known = map[describeKey]*executor.ModuleInfo{}
		}
		in.known[key] = info
		in.mu.Unlock()
	}
	return info, err
}

// read runs a module's initialization in an executor process of its own
// and returns its manifest.
func (in *inspector) read(ctx context.Context, b moduleBlob, memory uint64) (*executor.ModuleInfo, error) {
	f := executor.ModuleFile{Name: b.Name, Hash: b.Hash, Path: b.Path}
	p, err := executor.StartProcess(in.argv, in.cfg, in.logger)
	if err != nil {
		return nil, err
	}
	cleanup := func() {}
	if in.memoryCap > 0 {
		// A hard cap where the kernel offers one (a cgroup), above the
		// Go runtime's soft limit. The guest's pages are bounded by
		// memoryCap; the rest is the runtime and the compiler.
		if c, err := executor.LimitMemory(p.Pid(), inspectorHardLimit(in.memoryCap)); err == nil {
			cleanup = c
		}
	}
	defer func() {
		p.Close(cancelGrace) // returns once the process has exited
		cleanup()
	}()
	info, err := p.Describe(ctx, executor.DescribeMsg{Module: f, MemoryBytes: memory}, in.compileTimeout, in.initTimeout)
	var stopped *executor.StoppedError
	if errors.As(err, &stopped) {
		if stopped.Compiling {
			return nil, fmt.Errorf("module %s (sha256 %s): compiling it took longer than %s and was stopped: make the module smaller", b.Name, b.Hash[:12], in.compileTimeout)
		}
		return nil, fmt.Errorf("module %s (sha256 %s) function start function or _initialize: timeout: reading its manifest took longer than the module load timeout (%s): its initialization runs too long", b.Name, b.Hash[:12], in.loadTimeout)
	}
	return info, err
}

// inspectorGoLimit is the Go runtime's memory limit of an inspector
// process whose modules get memoryCap. A guest's linear memory is mapped
// outside the Go heap where the executor can (wasmexec's allocator on
// Linux), elsewhere it lives in the heap and a grow copies it, so the
// limit allows for it twice, and the runtime and compiler around it.
func inspectorGoLimit(memoryCap uint64) int64 { return int64(2*memoryCap + 64<<20) }

// inspectorHardLimit is the cgroup limit of an inspector process.
func inspectorHardLimit(memoryCap uint64) int64 { return int64(2*memoryCap + 128<<20) }

// wrapped is an error with a message of its own around another.
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }

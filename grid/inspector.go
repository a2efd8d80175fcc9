package grid

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/executor"
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

	mu    sync.Mutex
	known map[describeKey]*executor.ModuleInfo // manifests read, by module and memory limit
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
	key := describeKey{b.Hash, memory}
	in.mu.Lock()
	info := in.known[key]
	in.mu.Unlock()
	if info != nil {
		return info, nil
	}
	info, err := in.read(ctx, b, memory)
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
	defer p.Close(cancelGrace)
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

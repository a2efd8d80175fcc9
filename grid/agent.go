package grid

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wasmgrid/wasmgrid/allocator"
	"github.com/wasmgrid/wasmgrid/internal/executor"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/planner"
	"github.com/wasmgrid/wasmgrid/shuffle"
	"github.com/wasmgrid/wasmgrid/wasmexec"
)

// launch asks an agent to run one task attempt.
type launch struct {
	ctx        context.Context // the job's: canceled when the job ends
	job        string
	spec       planner.TaskSpec
	modules    []moduleBlob
	conf       jobspec.Conf
	outputFile string
}

// taskStatus is an agent's report of a finished attempt.
type taskStatus struct {
	job     string
	agent   string
	key     planner.TaskKey
	attempt int
	res     *executor.Result
	err     error
	elapsed time.Duration
}

// agent runs tasks and keeps their shuffle output under dir.
type agent struct {
	name      string
	dir       string
	resources allocator.Resources
	rt        *wasmexec.Runtime
	peers     *peerDirs
	logger    *slog.Logger
	launches  chan launch
	statuses  chan<- taskStatus

	mu     sync.Mutex // protects loaded
	loaded map[string]*wasmexec.Module

	// beforeTask, if set, runs before each task attempt: a fault-injection
	// hook for tests.
	beforeTask func(launch)
}

// run accepts launches until ctx ends, then waits for its tasks.
func (a *agent) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case l := <-a.launches:
			wg.Add(1)
			go func() {
				defer wg.Done()
				st := a.runTask(ctx, l)
				select {
				case a.statuses <- st:
				case <-ctx.Done():
				}
			}()
		case <-ctx.Done():
			return
		}
	}
}

func (a *agent) jobDir(job string) string { return filepath.Join(a.dir, "jobs", job) }

func (a *agent) runTask(agentCtx context.Context, l launch) taskStatus {
	start := time.Now()
	st := taskStatus{job: l.job, agent: a.name, key: l.spec.Key, attempt: l.spec.Attempt}
	ctx, cancel := context.WithTimeout(l.ctx, time.Duration(l.conf.TaskTimeout))
	defer cancel()
	stop := context.AfterFunc(agentCtx, cancel)
	defer stop()

	if a.beforeTask != nil {
		a.beforeTask(l)
	}
	mods, err := a.load(ctx, l.modules)
	if err != nil {
		st.err = err
		return st
	}
	task := &executor.Task{
		Spec:             l.spec,
		Modules:          mods,
		Limits:           wasmexec.Limits{MemoryBytes: uint64(l.conf.TaskMemory)},
		BatchSize:        int(l.conf.BatchSize),
		MaxRecord:        int(l.conf.MaxRecord),
		ShuffleDir:       a.jobDir(l.job),
		ShuffleMemory:    int64(l.conf.ShuffleMemory),
		CompressionLevel: l.conf.CompressionLevel,
		OutputFile:       l.outputFile,
		Blocks:           jobBlocks{peers: a.peers, job: l.job},
	}
	a.logger.Debug("task started", "job", l.job, "task", l.spec.Key.String(), "attempt", l.spec.Attempt)
	st.res, st.err = executor.Run(ctx, a.rt, task)
	st.elapsed = time.Since(start)
	if st.err != nil {
		a.logger.Info("task failed", "job", l.job, "task", l.spec.Key.String(), "attempt", l.spec.Attempt, "err", st.err)
	}
	return st
}

// load returns the job's modules compiled in this agent's runtime, loading
// each hash once.
func (a *agent) load(ctx context.Context, blobs []moduleBlob) (map[string]*wasmexec.Module, error) {
	out := make(map[string]*wasmexec.Module, len(blobs))
	for _, b := range blobs {
		a.mu.Lock()
		m := a.loaded[b.Hash]
		a.mu.Unlock()
		if m == nil {
			var err error
			if m, err = a.rt.Load(ctx, b.Name, b.Bytes); err != nil {
				return nil, err
			}
			a.mu.Lock()
			a.loaded[b.Hash] = m
			a.mu.Unlock()
		}
		out[b.Name] = m
	}
	return out, nil
}

// removeJob deletes the job's shuffle files: the job has ended.
func (a *agent) removeJob(job string) error { return os.RemoveAll(a.jobDir(job)) }

// peerDirs locates every agent's storage. In the embedded grid all agents
// share a file system; the QUIC block transport replaces this lookup.
type peerDirs struct {
	dirs map[string]string // agent name -> dir; written before Run, then read-only
}

// jobBlocks opens a job's shuffle blocks on any agent.
type jobBlocks struct {
	peers *peerDirs
	job   string
}

func (b jobBlocks) OpenBlock(ctx context.Context, agent string, id shuffle.MapOutputID, partition int) (executor.BlockIterator, error) {
	dir, ok := b.peers.dirs[agent]
	if !ok {
		return nil, &shuffle.FetchError{ID: id, Partition: partition, Location: agent, Err: fmt.Errorf("unknown agent %q", agent)}
	}
	dir = filepath.Join(dir, "jobs", b.job)
	return shuffle.OpenBlock(shuffle.BlockRef{
		ID:        id,
		Partition: partition,
		DataPath:  filepath.Join(dir, shuffle.DataFileName(id)),
		IndexPath: filepath.Join(dir, shuffle.IndexFileName(id)),
		Location:  agent,
	}, shuffle.Limits{})
}

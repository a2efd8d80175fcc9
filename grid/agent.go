package grid

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wasmgrid/wasmgrid/allocator"
	"github.com/wasmgrid/wasmgrid/internal/executor"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/planner"
	"github.com/wasmgrid/wasmgrid/shuffle/quicnet"
)

// launch asks an agent to run one task attempt.
type launch struct {
	ctx     context.Context // the job's: canceled when the job ends
	job     string
	tenant  string
	token   string // the job's block token
	spec    planner.TaskSpec
	modules []moduleBlob
	conf    jobspec.Conf
	// outputFile is where a result task writes its part: a path in the
	// volume outputVolume.
	outputFile, outputVolume string
	// outputFormat: how a result task writes its records (Settings.OutputFormat).
	outputFormat string
	// inlineOutput: the most bytes of a result task's part that travel in
	// its status rather than in outputFile (Settings.InlineOutput).
	inlineOutput int
	// volumes are the job's volumes, by name.
	volumes map[string]storage.Volume
	// blockServers locates the agents whose blocks the task reads; nil
	// means the agent's own peers table (an embedded grid).
	blockServers map[string]string
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

// agent runs tasks in executor child processes and keeps their shuffle
// output under dir.
type agent struct {
	name      string
	dir       string
	resources allocator.Resources
	peers     *peers
	blocks    *quicnet.Server // serves this agent's shuffle blocks
	logger    *slog.Logger
	launches  chan launch
	statuses  chan<- taskStatus
	// lost queues the agents declared lost, for the executors (peerLost).
	lost chan peerLoss

	// executorArgv starts an executor; executorCfg configures it;
	// executorOverhead is the memory it may use beyond its tasks' (0: the
	// default).
	executorArgv     []string
	executorCfg      executor.Config
	executorOverhead int64
	// pool runs the tasks in executors, one per tenant; set by run before
	// it accepts launches.
	pool *executor.Pool

	mu       sync.Mutex        // protects the fields below
	modules  map[string]string // module hash -> file
	tokens   map[string]string // job -> the token its tasks show the block server
	diskUsed map[string]int64  // job -> bytes of shuffle output kept
	diskCap  int64             // bytes of shuffle output the agent may keep

	// beforeTask, if set, runs before each task attempt: a fault-injection
	// hook for tests.
	beforeTask func(launch)
}

// agentParts is what an agent is made of. newAgent builds it, the one
// constructor of the embedded grid's agents and of a cluster's agent
// process: they differ only in where their parts come from (a config and
// node certificate, or an embedded grid's own authority) and in how they
// reach the coordinator (a direct link, or the control plane).
type agentParts struct {
	name      string
	dir       string // shuffle files under dir/jobs, modules
	resources allocator.Resources
	queue     int // launches accepted ahead of the executors
	peers     *peers
	statuses  chan<- taskStatus
	logger    *slog.Logger

	executorArgv     []string
	executorCfg      executor.Config
	executorOverhead int64
	diskCap          int64

	blockAddr string      // the block server's address
	blockTLS  *tls.Config // and its TLS (TLS 1.3, executor.ShuffleALPN)
}

// newAgent builds an agent and binds its block server.
func newAgent(p agentParts) (*agent, error) {
	a := &agent{
		name:             p.name,
		dir:              p.dir,
		resources:        p.resources,
		peers:            p.peers,
		logger:           p.logger,
		launches:         make(chan launch, p.queue),
		lost:             make(chan peerLoss, lostQueue),
		statuses:         p.statuses,
		executorArgv:     p.executorArgv,
		executorCfg:      p.executorCfg,
		executorOverhead: p.executorOverhead,
		modules:          map[string]string{},
		tokens:           map[string]string{},
		diskUsed:         map[string]int64{},
		diskCap:          p.diskCap,
	}
	var err error
	a.blocks, err = quicnet.NewServer(quicnet.ServerConfig{
		Addr:      p.blockAddr,
		TLS:       p.blockTLS,
		Dir:       filepath.Join(p.dir, "jobs"),
		Authorize: a.authorize,
		Logger:    p.logger,
	})
	if err != nil {
		return nil, fmt.Errorf("grid: %s's block server: %w", p.name, err)
	}
	return a, nil
}

// Grace periods of a task that is asked to stop: how long the executor has
// to stop it between two batches before the agent kills the executor.
const (
	cancelGrace   = 2 * time.Second
	deadlineGrace = 500 * time.Millisecond
)

// errDeadline is the cause of a task stopped at its deadline.
var errDeadline = errors.New("task deadline")

// run serves the agent's blocks and accepts launches until ctx ends, then
// waits for its tasks (ctx stops them), stops its executors and waits for
// its block server.
func (a *agent) run(ctx context.Context) {
	var servers sync.WaitGroup // the block server and the executor pool
	servers.Go(func() {
		if err := a.blocks.Run(ctx); err != nil {
			a.logger.Error("block server stopped", "err", err)
		}
	})
	a.pool = executor.NewPool(executor.PoolConfig{
		Argv:     a.executorArgv,
		Config:   a.executorCfg,
		Overhead: a.executorOverhead,
		Logger:   a.logger,
	})
	poolCtx, stopPool := context.WithCancel(context.WithoutCancel(ctx))
	servers.Go(func() { a.pool.Run(poolCtx, cancelGrace) })
	var tasks sync.WaitGroup
	defer func() {
		tasks.Wait()
		stopPool()
		servers.Wait()
	}()
	for {
		select {
		case p := <-a.lost:
			// Writes to the executors' input pipes, which they drain.
			a.pool.PeerLost(p.agent, p.blockAddr)
		case l := <-a.launches:
			tasks.Go(func() {
				st := a.runTask(ctx, l)
				select {
				case a.statuses <- st:
				case <-ctx.Done():
				}
			})
		case <-ctx.Done():
			return
		}
	}
}

// peerLoss is an agent declared lost and its block server's address.
type peerLoss struct{ agent, blockAddr string }

// lostQueue bounds the losses waiting for the agent's loop.
const lostQueue = 64

// peerLost has the agent's executors stop fetching from the block server of
// a lost agent. It does not block: the coordinator calls it with its core
// held.
func (a *agent) peerLost(agent, blockAddr string) {
	if agent == a.name {
		return
	}
	select {
	case a.lost <- peerLoss{agent, blockAddr}:
	default:
		// The loop drains it between launches; a full queue means it has
		// stopped, and the executors with it.
		a.logger.Warn("lost peer dropped: the agent has stopped", "peer", agent, "addr", blockAddr)
	}
}

func (a *agent) jobDir(job string) string { return filepath.Join(a.dir, "jobs", job) }

func (a *agent) runTask(agentCtx context.Context, l launch) (st taskStatus) {
	start := time.Now()
	st = taskStatus{job: l.job, agent: a.name, key: l.spec.Key, attempt: l.spec.Attempt}
	// A named result, so that the deferred assignment reaches the caller.
	defer func() { st.elapsed = time.Since(start) }()
	if a.beforeTask != nil {
		a.beforeTask(l)
	}
	msg, err := a.taskMsg(l)
	if err != nil {
		st.err = err
		return st
	}
	// The attempt stops when its job ends, when the agent stops, or at its
	// deadline, whichever comes first. The executor enforces the deadline
	// too, in case this agent cannot.
	timeout := time.Duration(l.conf.TaskTimeout)
	msg.Timeout = timeout
	ctx, cancel := context.WithCancelCause(l.ctx)
	defer cancel(nil)
	stopAgent := context.AfterFunc(agentCtx, func() { cancel(context.Cause(agentCtx)) })
	defer stopAgent()
	deadline := time.AfterFunc(timeout, func() { cancel(errDeadline) })
	defer deadline.Stop()
	grace := cancelGrace
	if timeout > 0 {
		grace = deadlineGrace
	}
	a.logger.Debug("task started", "job", l.job, "tenant", l.tenant, "task", l.spec.Key.String(), "attempt", l.spec.Attempt)
	resp, err := a.pool.Exec(ctx, l.tenant, msg, taskReservation(l.conf), grace)
	timedOut := errors.Is(context.Cause(ctx), errDeadline)
	var died *executor.DiedError
	var memory *executor.MemoryError
	switch {
	case errors.As(err, &memory):
		// The tenant's executor passed the memory reserved for its tasks:
		// every task it ran fails, and is retried like any task error.
		st.err = &executor.Error{Failure: planner.Failure{Kind: planner.TaskError}, Err: fmt.Errorf("task %s attempt %d: %s: %w", l.spec.Key, l.spec.Attempt, executor.StageLabel(l.spec.Stage, moduleHashes(l.modules)), memory)}
	case timedOut:
		st.err = &executor.Error{
			Failure: planner.Failure{Kind: planner.TaskError},
			Err:     fmt.Errorf("task %s attempt %d: %s: ran past its deadline (task.timeout = %s) and was stopped", l.spec.Key, l.spec.Attempt, executor.StageLabel(l.spec.Stage, moduleHashes(l.modules)), timeout),
			Log:     resp.Log,
		}
	case errors.As(err, &died) && died.Killed:
		// Killed for another attempt's sake: not this one's fault.
		st.err = &executor.Error{Failure: planner.Failure{Kind: planner.Lost}, Err: fmt.Errorf("task %s attempt %d: %w", l.spec.Key, l.spec.Attempt, err)}
	case err != nil && (ctx.Err() != nil || errors.Is(err, executor.ErrPoolStopped)):
		// Stopped (the job ended, the agent stops) before it ran.
		st.err = &executor.Error{Failure: planner.Failure{Kind: planner.Lost}, Err: fmt.Errorf("task %s attempt %d: %w", l.spec.Key, l.spec.Attempt, err)}
	case err != nil:
		st.err = &executor.Error{Failure: planner.Failure{Kind: planner.TaskError}, Err: fmt.Errorf("task %s attempt %d: %w", l.spec.Key, l.spec.Attempt, err)}
	case resp.Failure != nil:
		st.err = &executor.Error{Failure: *resp.Failure, Err: errors.New(resp.Err), Log: resp.Log}
	default:
		st.res = resp.Result
		if err := a.account(l, resp.Result); err != nil {
			st.res, st.err = nil, &executor.Error{Failure: planner.Failure{Kind: planner.TaskError}, Err: fmt.Errorf("task %s attempt %d: %w", l.spec.Key, l.spec.Attempt, err)}
		}
	}
	if timedOut {
		st.err.(*executor.Error).Failure.Msg = st.err.Error()
	} else if e, ok := st.err.(*executor.Error); ok && e.Failure.Msg == "" {
		e.Failure.Msg = e.Err.Error()
	}
	if st.err != nil {
		a.logger.Info("task failed", "job", l.job, "task", l.spec.Key.String(), "attempt", l.spec.Attempt, "err", st.err)
	}
	return st
}

// taskMsg describes a launch for the executor, storing the job's modules
// in the agent's module directory first.
func (a *agent) taskMsg(l launch) (*executor.TaskMsg, error) {
	if l.blockServers == nil {
		l.blockServers = a.peers.addrs
	}
	msg := &executor.TaskMsg{
		Spec: l.spec.Own(),
		Settings: executor.Settings{
			MemoryBytes:      uint64(l.conf.TaskMemory),
			BatchSize:        int(l.conf.BatchSize),
			MaxRecord:        int(l.conf.MaxRecord),
			MaxOutput:        int64(l.conf.MaxOutput),
			ShuffleDir:       a.jobDir(l.job),
			ShuffleMemory:    int64(l.conf.ShuffleMemory),
			CompressionLevel: l.conf.CompressionLevel,
			OutputFile:       l.outputFile,
			OutputVolume:     l.outputVolume,
			Volumes:          l.volumes,
			OutputFormat:     l.outputFormat,
			InlineOutput:     l.inlineOutput,
		},
		Job:          l.job,
		Token:        l.token,
		BlockServers: l.blockServers,
	}
	a.mu.Lock()
	a.tokens[l.job] = l.token
	a.mu.Unlock()
	for _, b := range l.modules {
		path, err := a.storeModule(b)
		if err != nil {
			return nil, err
		}
		msg.Modules = append(msg.Modules, executor.ModuleFile{Name: b.Name, Hash: b.Hash, Path: path})
	}
	return msg, nil
}

// storeModule writes a module to the agent's content-addressed module
// directory once.
func (a *agent) storeModule(b moduleBlob) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.modules[b.Hash]; ok {
		return p, nil
	}
	path, err := writeModule(filepath.Join(a.dir, "modules"), b)
	if err != nil {
		return "", err
	}
	a.modules[b.Hash] = path
	return path, nil
}

// account adds a map output to the agent's shuffle disk use, or deletes it
// and says why if it would pass the agent's cap: the task fails here and is
// retried where there is room.
func (a *agent) account(l launch, res *executor.Result) error {
	if res == nil || res.MapOutput == nil {
		return nil
	}
	var size int64
	for _, p := range res.MapOutput.Partitions {
		size += p.Length
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var used int64
	for _, u := range a.diskUsed {
		used += u
	}
	if a.diskCap > 0 && used+size > a.diskCap {
		os.Remove(res.MapOutput.DataPath)
		os.Remove(res.MapOutput.IndexPath)
		return fmt.Errorf("%s's shuffle disk cap (%d bytes) would be passed: this map output is %d bytes and the agent keeps %d bytes of shuffle files; raise the cap (grid.Config.ShuffleDiskBytes) or use more agents", a.name, a.diskCap, size, used)
	}
	a.diskUsed[l.job] += size
	return nil
}

// removeJob deletes the job's shuffle files and forgets its token: the job
// has ended, and its blocks are served no more.
func (a *agent) removeJob(job string) error {
	a.mu.Lock()
	delete(a.tokens, job)
	delete(a.diskUsed, job)
	a.mu.Unlock()
	return os.RemoveAll(a.jobDir(job))
}

// authorize tells the block server whether token entitles its bearer to
// the job's blocks: a task of one job cannot read another's by guessing
// names.
func (a *agent) authorize(job, token string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	want, ok := a.tokens[job]
	return ok && subtle.ConstantTimeCompare([]byte(want), []byte(token)) == 1
}

// peers locates every agent's block server.
type peers struct {
	addrs map[string]string // agent name -> block server address; written before Run, then read-only
}

// moduleHashes maps a job's module names to their sha256.
func moduleHashes(blobs []moduleBlob) map[string]string {
	m := make(map[string]string, len(blobs))
	for _, b := range blobs {
		m[b.Name] = b.Hash
	}
	return m
}

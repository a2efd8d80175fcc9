package grid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmgrid/wasmgrid/allocator"
	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/core"
	"github.com/wasmgrid/wasmgrid/internal/executor"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/internal/raftlog"
	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/internal/tokens"
	"github.com/wasmgrid/wasmgrid/planner"
)

// coordinator is the shell around the coordinator's state machine
// (package core): it turns submissions, agents' registrations, reports
// and losses into commands, applies them, and carries out the decisions
// (launches, kills, commits, the end of jobs). It holds no scheduling
// policy of its own.
type coordinator struct {
	logger   *slog.Logger
	metrics  *metrics
	stateDir string
	statuses chan taskStatus // the agents of this process report here

	// changed is closed, and replaced, whenever a job's progress or state
	// changes: event streams wait on it instead of polling.
	changedMu sync.Mutex
	changed   chan struct{}

	// log orders the commands: a replicated log (raftlog) whose servers
	// apply them through Apply, or this process's memory (memLog).
	log commandLog
	// life ends when the coordinator stops: proposals give up.
	life    context.Context
	endLife context.CancelFunc

	mu      sync.Mutex // guards the core and the fields below
	core    *core.Core
	coreCfg core.Config
	// leading: this server carries out the core's decisions (a replicated
	// log's leader, or the only server).
	leading bool
	// links reach the agents; jobs are the jobs this process carries,
	// from their acceptance to their end; pending the submissions on
	// their way in, by request.
	links   map[string]agentLink
	jobs    map[string]*jobRun
	pending map[string]*jobRun
	wake    *time.Timer
	closed  bool

	stopped chan struct{} // closed when run returns
	nextReq atomic.Uint64
	// bg runs what goes on beside the core: commits, shuffle removals,
	// discarded attempts' files.
	bg sync.WaitGroup

	// stores are the volumes' stores, for planning and commits; outputs
	// the output directories of running jobs; results the volume of
	// results that are printed rather than written.
	stores  *storage.Cache
	outputs outputs
	results storage.Volume
	// grants are the volumes of a job whose request names none.
	grants func(tenant string) storage.Grants

	// tokens and modules are the shell's replicated state beside the
	// core (replstate.go): grid commands of the log change them.
	tokens  *tokens.Store
	modules *moduleStore
	// missing is told, without blocking, of a module the log names that
	// this server lacks; nil: nobody fetches it (the embedded grid).
	missing func(hash string)
}

func newCoordinator(logger *slog.Logger, m *metrics, statuses chan taskStatus, stateDir string) (*coordinator, error) {
	results, err := resultsVolume(stateDir)
	if err != nil {
		return nil, fmt.Errorf("grid: results directory: %w", err)
	}
	cr, err := core.New(core.Config{})
	if err != nil {
		return nil, err
	}
	life, endLife := context.WithCancel(context.Background())
	c := &coordinator{
		life:     life,
		endLife:  endLife,
		stores:   &storage.Cache{},
		results:  results,
		grants:   func(string) storage.Grants { return storage.Grants{} },
		logger:   logger,
		metrics:  m,
		stateDir: stateDir,
		statuses: statuses,
		core:     cr,
		tokens:   tokens.NewStore(nil, time.Now),
		modules:  newModuleStore(filepath.Join(stateDir, "coordinator", "modules"), LimitsConfig{}.withDefaults()),
		links:    map[string]agentLink{},
		jobs:     map[string]*jobRun{},
		pending:  map[string]*jobRun{},
		stopped:  make(chan struct{}),
	}
	c.log = &memLog{fsm: c}
	c.leading = true
	return c, nil
}

// configure sets the core's configuration (the tenants' weights and
// quotas, the history kept); only before run.
func (c *coordinator) configure(cfg core.Config) error {
	cr, err := core.New(cfg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.core, c.coreCfg = cr, cfg
	c.mu.Unlock()
	return nil
}

// commandLog orders the coordinator's commands. Propose returns once the
// command is applied on this server (or fails; a command the log refused
// was applied nowhere).
type commandLog interface {
	Propose(ctx context.Context, cmd []byte) (uint64, error)
}

// memLog is the log of a coordinator that shares its state with nobody
// (the embedded grid): commands are applied as they are proposed.
type memLog struct {
	mu    sync.Mutex
	index uint64
	fsm   interface {
		Apply(index uint64, cmd []byte)
	}
}

func (l *memLog) Propose(_ context.Context, cmd []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.index++
	l.fsm.Apply(l.index, cmd)
	return l.index, nil
}

// Apply applies a committed entry: a core command to the core, whose
// decisions the leader carries out, or a grid command to the shell's
// replicated state. It is the replicated log's state machine
// (raftlog.FSM).
func (c *coordinator) Apply(_ uint64, b []byte) {
	e, err := decodeEntry(b)
	if err != nil {
		// The log checksums its entries: this is a bug, not a disk error.
		c.logger.Error("a command of the log does not decode: skipped", "err", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.grid != nil {
		c.applyGrid(*e.grid)
		return
	}
	ds := c.core.Apply(*e.core)
	c.afterCore(*e.core, ds)
	if !c.leading || c.closed {
		return
	}
	for _, d := range ds {
		c.carry(d)
	}
}

// Snapshot returns the core's state and the shell's replicated state
// (raftlog.FSM).
func (c *coordinator) Snapshot() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, err := c.core.Snapshot()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(gridSnapshot{Grid: gridSnapshotVersion, Core: cs, Tokens: c.tokens.Snapshot(), Modules: c.modules.records()})
	if err != nil {
		return nil, fmt.Errorf("grid: snapshot: %w", err)
	}
	return b, nil
}

// Restore replaces the core's state and the shell's replicated state with
// a snapshot's (raftlog.FSM).
func (c *coordinator) Restore(_ uint64, b []byte) error {
	snap, legacy, err := decodeSnapshot(b)
	if err != nil {
		return err
	}
	cr, err := core.Restore(c.coreCfg, snap.Core)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.core = cr
	if !legacy {
		c.tokens.Restore(snap.Tokens)
		c.modules.restore(snap.Modules)
	}
	c.wantModules()
	c.modules.sweep(modulesInUse(c.core))
	return nil
}

// agentLink carries the coordinator's orders to one agent: an agent of
// this process, or a remote one over the control plane. No method may
// block: they run while the core is held.
type agentLink interface {
	// launch queues a task attempt.
	launch(l launch)
	// kill stops attempts the agent runs.
	kill(attempts []core.Attempt)
	// removeJob stops the job's attempts on the agent and deletes its
	// shuffle files.
	removeJob(job string) error
	// peerLost tells the agent that another agent was declared lost: its
	// attempts stop fetching from blockAddr, the lost agent's block
	// server.
	peerLost(agent, blockAddr string)
}

// agentRef is an agent registering with the coordinator.
type agentRef struct {
	name      string
	resources allocator.Resources
	blockAddr string
	link      agentLink
	running   []core.Attempt // for reconciliation
}

// localLink is the link to an agent of this process.
type localLink struct{ a *agent }

func (l localLink) launch(x launch) {
	select {
	case l.a.launches <- x:
	default:
		// The agent drains its launches at once; a full queue means it
		// has stopped, and its attempts are lost with it.
		l.a.logger.Warn("launch dropped: the agent has stopped", "job", x.job, "task", x.spec.Key.String())
	}
}

// kill does nothing: an agent of this process never registers again, so
// the core never finds attempts of it to kill.
func (l localLink) kill([]core.Attempt)              {}
func (l localLink) removeJob(job string) error       { return l.a.removeJob(job) }
func (l localLink) peerLost(agent, blockAddr string) { l.a.peerLost(agent, blockAddr) }

// addAgent registers an agent of this process; only before run.
func (c *coordinator) addAgent(a *agent) {
	c.join(&agentRef{name: a.name, resources: a.resources, blockAddr: a.blocks.Addr().String(), link: localLink{a}})
}

// join registers an agent, or registers it again: the core reconciles
// what it runs.
func (c *coordinator) join(ref *agentRef) {
	c.mu.Lock()
	c.links[ref.name] = ref.link
	c.mu.Unlock()
	c.apply(core.Command{AgentUp: &core.AgentUp{Name: ref.name, Resources: ref.resources, BlockAddr: ref.blockAddr, Running: ref.running}})
	c.logger.Info("agent joined", "agent", ref.name, "resources", ref.resources.String(), "blocks", ref.blockAddr, "running", len(ref.running))
}

// suspect stops offering an agent that left gossip or lost its control
// connection: it has its grace period to come back (as a new
// registration) before it is declared lost. Its running attempts keep
// their resources until they report or are lost.
func (c *coordinator) suspect(name string) {
	c.apply(core.Command{Suspect: &core.AgentName{Name: name}})
	c.logger.Warn("agent suspect: no more offers", "agent", name)
}

// lose takes a lost agent out: its attempts are lost (and run again), its
// map outputs forgotten (and recomputed from lineage when needed), and its
// late reports refused.
func (c *coordinator) lose(name string) {
	c.apply(core.Command{AgentLost: &core.AgentName{Name: name}})
	c.mu.Lock()
	delete(c.links, name)
	c.mu.Unlock()
	c.metrics.agentsLost.Inc()
	c.logger.Warn("agent lost", "agent", name)
}

// apply proposes a command; this server's Apply carries out what the
// core decides. It gives up when the coordinator stops or the log refuses
// (this server is not the leader).
func (c *coordinator) apply(cmd core.Command) error {
	cmd.Time = time.Now()
	b, err := cmd.Encode()
	if err != nil {
		return err
	}
	return c.propose(context.Background(), b, cmd.Kind())
}

// propose proposes an entry until it is applied here, ctx or the
// coordinator's life ends, or the log refuses it for good.
func (c *coordinator) propose(ctx context.Context, b []byte, kind string) error {
	ctx, cancel := context.WithTimeout(ctx, proposeTimeout)
	defer cancel()
	stop := context.AfterFunc(c.life, cancel)
	defer stop()
	for {
		_, err := c.log.Propose(ctx, b)
		var nl *raftlog.NotLeaderError
		retry := errors.Is(err, raftlog.ErrRetry) || errors.As(err, &nl) && nl.LeaderID == 0
		if err == nil || !retry {
			if err != nil && c.life.Err() == nil {
				c.logger.Warn("a command was not applied", "kind", kind, "err", err)
			}
			return err
		}
		// An election is under way, or the leader replaced the entry:
		// the command was applied nowhere, so it is proposed again.
		select {
		case <-ctx.Done():
			return fmt.Errorf("grid: no coordinator leads: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// proposeTimeout bounds how long a command waits for the log: an election,
// or a lost quorum.
const proposeTimeout = 30 * time.Second

// read runs fn with the core held: queries of the API.
func (c *coordinator) read(fn func(*core.Core)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(c.core)
}

// run applies the reports of this process's agents until ctx ends, then
// ends the jobs still running and waits for what runs beside the core.
func (c *coordinator) run(ctx context.Context) {
	defer close(c.stopped)
	defer c.stores.Close()
	defer c.bg.Wait()
	for {
		select {
		case st := <-c.statuses:
			// The reports that arrived meanwhile go with it.
			batch, _ := drain(st, c.statuses, statusBatch)
			c.applyStatuses(batch)
		case <-ctx.Done():
			c.shutdown(context.Cause(ctx))
			return
		}
	}
}

// shutdown stops applying commands and ends the jobs of this process:
// they failed with the grid.
func (c *coordinator) shutdown(cause error) {
	c.endLife()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.wake != nil {
		c.wake.Stop()
	}
	for _, id := range slices.Sorted(maps.Keys(c.jobs)) {
		j := c.jobs[id]
		j.err = fmt.Errorf("grid stopped: %w", cause)
		j.cancel()
		c.bg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
			defer cancel()
			c.abortOutput(ctx, j)
			c.outputs.release(j.out.String())
			c.metrics.jobs.WithLabelValues("failed").Inc()
			j.summary = &api.Summary{Job: j.id, Name: j.name, Duration: time.Since(j.start), Output: j.outURL, Stdout: j.stdout, Plan: j.plan}
			close(j.done)
		})
	}
	clear(c.jobs)
}

// status applies an agent's report.
func (c *coordinator) status(ts taskStatus) error {
	return c.apply(core.Command{Status: statusOf(ts)})
}

// applyStatuses applies many attempts' reports in one command: one entry
// of the log, one offer cycle.
func (c *coordinator) applyStatuses(tss []taskStatus) error {
	if len(tss) == 1 {
		return c.status(tss[0])
	}
	sts := make([]core.Status, len(tss))
	for i, ts := range tss {
		sts[i] = *statusOf(ts)
	}
	return c.apply(core.Command{Statuses: sts})
}

// drain returns first and what else ch holds at once, up to max in all,
// and whether ch is still open.
func drain[T any](first T, ch <-chan T, max int) ([]T, bool) {
	out := []T{first}
	for len(out) < max {
		select {
		case x, ok := <-ch:
			if !ok {
				return out, false
			}
			out = append(out, x)
		default:
			return out, true
		}
	}
	return out, true
}

// statusOf is the core's status of an agent's report.
func statusOf(ts taskStatus) *core.Status {
	st := &core.Status{Job: ts.job, Task: ts.key, Attempt: ts.attempt, Agent: ts.agent, Elapsed: ts.elapsed}
	if ts.err != nil {
		f := executor.FailureOf(ts.err)
		st.Failure, st.Err = &f, ts.err.Error()
		var e *executor.Error
		if errors.As(ts.err, &e) {
			st.Log = e.Log
		}
	} else if ts.res != nil {
		st.RecordsIn, st.RecordsOut, st.BytesIn, st.PeakRSS, st.Samples = ts.res.RecordsIn, ts.res.RecordsOut, ts.res.BytesIn, ts.res.PeakRSS, ts.res.Samples
		st.Started = ts.res.Started
		st.Inline, st.Output = ts.res.Inline, ts.res.Output
	}
	return st
}

// carry does what the core decided; the core is held.
func (c *coordinator) carry(d core.Decision) {
	switch d := d.(type) {
	case core.Accepted:
		if j := c.pending[d.Request]; j != nil {
			delete(c.pending, d.Request)
			j.id = d.Job
			j.out.Job = d.Job
			if plan, ok := c.core.Plan(d.Job); ok {
				j.plan = plan.String()
			}
			c.jobs[d.Job] = j
			c.logger.Info("job started", "job", j.id, "tenant", j.tenant, "name", j.name)
		}
	case core.Refused:
		if j := c.pending[d.Request]; j != nil {
			delete(c.pending, d.Request)
			j.refused = errors.New(d.Err)
		}
	case core.Launch:
		c.launch(d)
	case core.Kill:
		if link := c.links[d.Agent]; link != nil {
			link.kill(d.Attempts)
		}
		c.logger.Warn("agent runs attempts the coordinator does not know: killed", "agent", d.Agent, "attempts", len(d.Attempts))
	case core.RemoveJob:
		if j := c.jobs[d.Job]; j != nil {
			j.cancel()
		}
		for _, name := range d.Agents {
			if link := c.links[name]; link != nil {
				c.bg.Go(func() {
					if err := link.removeJob(d.Job); err != nil {
						c.logger.Warn("remove shuffle files", "job", d.Job, "agent", name, "err", err)
					}
				})
			}
		}
	case core.PeerLost:
		// A lost agent may be frozen rather than dead: its block server
		// closes nothing, and the reducers fetching from it would wait for
		// the idle timeout. Every other agent stops those fetches now.
		for _, name := range slices.Sorted(maps.Keys(c.links)) {
			if name != d.Agent {
				c.links[name].peerLost(d.Agent, d.BlockAddr)
			}
		}
	case core.Commit:
		c.commit(d)
	case core.Discard:
		if j := c.jobs[d.Job]; j != nil {
			file := j.out.AttemptPath(d.Partition, d.Attempt)
			c.bg.Go(func() {
				if err := j.out.Store.Remove(context.Background(), file); err != nil {
					c.logger.Warn("remove a stale attempt's output", "job", d.Job, "partition", d.Partition, "err", err)
				}
			})
		}
	case core.Ended:
		c.ended(d.Job)
		c.notifyChanged()
	case core.Changed:
		if j := c.jobs[d.Job]; j != nil {
			j.publish(c.progress(j))
		}
		c.notifyChanged()
	case core.AttemptEnded:
		c.attemptEnded(d)
	case core.Wake:
		c.setWake(d.At)
	}
}

// changes returns a channel closed at the next change of any job's
// progress or state.
func (c *coordinator) changes() <-chan struct{} {
	c.changedMu.Lock()
	defer c.changedMu.Unlock()
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return c.changed
}

// notifyChanged wakes the waiters of changes.
func (c *coordinator) notifyChanged() {
	c.changedMu.Lock()
	defer c.changedMu.Unlock()
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// launch sends an attempt to its agent.
func (c *coordinator) launch(d core.Launch) {
	j, link := c.jobs[d.Job], c.links[d.Agent]
	if j == nil || link == nil {
		// The agent will register again (and the core find the attempt
		// missing) or be declared lost.
		c.logger.Warn("launch without a job or a link", "job", d.Job, "agent", d.Agent)
		return
	}
	l := launch{ctx: j.ctx, job: j.id, tenant: j.tenant, token: j.token, spec: d.Spec, modules: j.modules, conf: j.conf, volumes: j.volumes, blockServers: d.BlockServers}
	if d.Spec.Stage.IsResult() {
		l.outputFile = j.out.AttemptPath(d.Spec.Key.Partition, d.Spec.Attempt)
		l.outputVolume = j.out.Volume
		l.outputFormat = outputFormat(j.sink, d.Spec.Key.Partition)
		l.inlineOutput = j.inlineOutput(d.Spec.Stage.Partitions)
	}
	link.launch(l)
	c.metrics.runningTasks.Inc()
}

func (c *coordinator) attemptEnded(d core.AttemptEnded) {
	c.metrics.attempts.WithLabelValues(d.Outcome).Inc()
	if d.Outcome == "stale" {
		return
	}
	c.metrics.runningTasks.Dec()
	if d.Outcome == "killed" {
		return
	}
	kind := "map"
	if d.Result {
		kind = "result"
	}
	c.metrics.taskSeconds.WithLabelValues(kind).Observe(d.Elapsed.Seconds())
	c.metrics.roundTrip.Observe(d.RoundTrip.Seconds())
	c.metrics.recordsIn.Add(float64(d.RecordsIn))
	c.metrics.bytesIn.Add(float64(d.BytesIn))
	c.metrics.recordsOut.Add(float64(d.RecordsOut))
	if d.Outcome != "succeeded" {
		c.logger.Warn("task attempt failed", "job", d.Job, "task", d.Task.String(), "attempt", d.Attempt, "agent", d.Agent, "outcome", d.Outcome, "err", d.Err)
	}
}

// setWake applies a tick at t, when a decline filter lapses.
func (c *coordinator) setWake(t time.Time) {
	if c.wake != nil {
		c.wake.Stop()
	}
	c.wake = time.AfterFunc(time.Until(t), func() { c.apply(core.Command{Tick: &struct{}{}}) })
}

// commit commits a finished job's output beside the core (a commit to
// object storage copies the parts) and then applies Committed.
func (c *coordinator) commit(d core.Commit) {
	j := c.jobs[d.Job]
	if j == nil {
		return
	}
	j.cancel()
	parts := make([]string, len(d.Parts))
	files := false
	for p, attempt := range d.Parts {
		if p < len(d.Inline) && d.Inline[p] {
			continue // the core holds it: "" leaves an empty file
		}
		parts[p], files = j.out.AttemptPath(p, attempt), true
	}
	_, counters, _ := c.core.Progress(j.id)
	c.bg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		defer cancel()
		var err error
		records := counters.RecordsOut
		switch {
		case d.Err == "" && j.stdout && !files:
			// Every part is inline, in the job's record: there is no
			// file to move.
		case d.Err == "":
			records, err = c.commitOutput(ctx, j, parts, records)
		}
		if d.Err != "" || err != nil {
			c.abortOutput(ctx, j)
		}
		c.outputs.release(j.out.String())
		cm := &core.Committed{Job: j.id, Output: j.outURL}
		if err != nil {
			cm.Err = err.Error()
		}
		if d.Err == "" && err == nil {
			cm.RecordsOut = &records
		}
		c.apply(core.Command{Committed: cm})
	})
}

// inlineResult bounds the bytes of a printed result that its tasks return
// in their statuses rather than in files, shared among its partitions:
// the coordinator keeps them in its log and in the job's record, with no
// file written, moved or read for them.
const inlineResult = 64 << 10

// inlineOutput is the most bytes of a part of a result of partitions
// partitions that its task may return inline: none for a result written to
// the tenant's files (its parts are files by contract) or one that the
// commit cuts or replaces (sink.take, count).
func (j *jobRun) inlineOutput(partitions int) int {
	if !j.stdout || j.sink.Take > 0 || j.sink.Kind == "count" || partitions <= 0 {
		return 0
	}
	return inlineResult / partitions
}

// commitTimeout bounds a job's commit: moving its parts into place.
const commitTimeout = 30 * time.Minute

// ended tells a finished job's waiters.
func (c *coordinator) ended(id string) {
	j := c.jobs[id]
	if j == nil {
		return
	}
	delete(c.jobs, id)
	rec, _ := c.core.Record(id)
	j.summary = summaryOf(rec, j.stdout)
	if rec.State != core.Succeeded {
		j.err = errors.New(rec.Err)
	}
	j.publish(c.progress(j))
	c.metrics.jobs.WithLabelValues(map[bool]string{true: "succeeded", false: "failed"}[j.err == nil]).Inc()
	c.logger.Info("job finished", "job", id, "state", rec.State, "err", rec.Err, "duration", rec.Duration())
	close(j.done)
}

// summaryOf is a finished job's summary.
func summaryOf(r *core.Record, stdout bool) *api.Summary {
	return &api.Summary{
		Job: r.ID, Name: r.Name,
		RecordsIn: r.RecordsIn, RecordsOut: r.RecordsOut, BytesIn: r.BytesIn,
		Stages: len(r.Stages), Tasks: r.Tasks, Attempts: r.Attempts, FailedAttempts: r.FailedAttempts,
		Duration: r.Duration(), Output: r.Output, Stdout: stdout, Partitions: r.Partitions,
		ExecutorPeakRSS: r.PeakRSS, Plan: r.Plan, RoundTripP50: r.RoundTripP50, RoundTripP99: r.RoundTripP99,
		StartP50: r.StartP50, StartP99: r.StartP99,
	}
}

// progress is a job's progress as the core has it; the core is held.
func (c *coordinator) progress(j *jobRun) api.Progress {
	stages, counters, _ := c.core.Progress(j.id)
	p := api.Progress{Job: j.id, RecordsIn: counters.RecordsIn, RecordsOut: counters.RecordsOut, BytesIn: counters.BytesIn, Elapsed: time.Since(j.start)}
	for _, s := range stages {
		p.Stages = append(p.Stages, api.StageProgress{ID: s.ID, Name: s.Name, Tasks: s.Tasks, Running: s.Running, Done: s.Done})
	}
	return p
}

// cancel cancels a job.
func (c *coordinator) cancel(id, reason string) {
	c.apply(core.Command{Cancel: &core.Cancel{Job: id, Reason: reason}})
}

// submit hands a planned job to the core. Its output is claimed and
// checked first: nothing runs if it cannot be written.
func (c *coordinator) submit(ctx context.Context, req admission, job planner.Job, blobs map[string]moduleBlob, volumes map[string]storage.Volume, taskRes allocator.Resources) (*Job, error) {
	request := fmt.Sprintf("sub-%d-%s", c.nextReq.Add(1), newToken()[:8])
	j := newJobRun(request, req, blobs, taskRes, volumes)
	if err := c.prepareOutput(ctx, j); err != nil {
		return nil, err
	}
	payload, err := json.Marshal(j.payload())
	if err != nil {
		c.outputs.release(j.out.String())
		return nil, fmt.Errorf("grid: %w", err)
	}
	c.mu.Lock()
	closed := c.closed
	c.pending[request] = j
	c.mu.Unlock()
	var err2 error
	if !closed {
		err2 = c.apply(core.Command{Submit: &core.Submit{Request: request, Tenant: j.tenant, Name: j.name, Job: job,
			MaxAttempts: req.Spec.Conf.MaxAttempts, Task: taskRes, Payload: payload}})
	}
	c.mu.Lock()
	delete(c.pending, request)
	c.mu.Unlock()
	if j.id == "" && err2 != nil {
		c.abortOutput(context.WithoutCancel(ctx), j)
		c.outputs.release(j.out.String())
		return nil, fmt.Errorf("grid: the job was not accepted: %w", err2)
	}
	if j.id == "" {
		c.abortOutput(context.WithoutCancel(ctx), j)
		c.outputs.release(j.out.String())
		if j.refused != nil {
			return nil, fmt.Errorf("%s: %w", req.Spec.Display(), j.refused)
		}
		return nil, errStopped
	}
	id := j.id
	return &Job{run: j, cancel: func() { c.cancel(id, "") }, result: func(ctx context.Context) (*printed, error) { return c.result(ctx, id) }, logs: func() []api.TaskLog {
		var out []api.TaskLog
		c.read(func(cr *core.Core) {
			ls, _ := cr.Logs(id, "")
			for _, l := range ls {
				out = append(out, api.TaskLog(l))
			}
		})
		return out
	}}, nil
}

// jobRun is the shell's side of a job: what its launches and its commit
// need, and its waiters. The core holds its state.
type jobRun struct {
	id      string // given when the core accepts it
	request string
	tenant  string
	name    string
	token   string // shown by the job's tasks to the block servers
	req     admission
	modules []moduleBlob
	taskRes allocator.Resources
	conf    jobspec.Conf
	sink    jobspec.Sink
	plan    string // the physical plan, as a tree
	ctx     context.Context
	cancel  context.CancelFunc
	start   time.Time

	// out is where the result goes (outURL as the user names it); a
	// stdout result is kept in resultDir until it is read.
	out       *storage.Output
	outURL    string
	stdout    bool
	resultDir string
	// volumes are the volumes the job's tasks read and write, by name.
	volumes map[string]storage.Volume

	refused  error // the core refused the submission
	err      error
	progress chan api.Progress
	done     chan struct{}
	summary  *api.Summary
}

func newJobRun(request string, req admission, blobs map[string]moduleBlob, taskRes allocator.Resources, volumes map[string]storage.Volume) *jobRun {
	ctx, cancel := context.WithCancel(context.Background())
	var mods []moduleBlob
	for _, name := range slices.Sorted(maps.Keys(blobs)) {
		mods = append(mods, blobs[name])
	}
	return &jobRun{
		request:  request,
		tenant:   req.tenant(),
		name:     req.Spec.Name,
		token:    newToken(),
		req:      req,
		modules:  mods,
		taskRes:  taskRes,
		conf:     req.Spec.Conf,
		sink:     req.Spec.Sink,
		ctx:      ctx,
		cancel:   cancel,
		start:    time.Now(),
		progress: make(chan api.Progress, 1),
		done:     make(chan struct{}),
		volumes:  maps.Clone(volumes),
	}
}

// jobPayload is the shell's record of a job in the core's state: what a
// coordinator that takes over needs to launch its tasks and commit it.
type jobPayload struct {
	Token     string                    `json:"token"`
	Modules   []moduleBlob              `json:"modules"`
	Conf      jobspec.Conf              `json:"conf"`
	Sink      jobspec.Sink              `json:"sink"`
	Volumes   map[string]storage.Volume `json:"volumes,omitempty"`
	Output    outputRef                 `json:"output"`
	Overwrite bool                      `json:"overwrite,omitempty"`
}

// outputRef names a job's output directory in a volume.
type outputRef struct {
	Volume storage.Volume `json:"volume"`
	Dir    string         `json:"dir"`
	URL    string         `json:"url"`
	Stdout bool           `json:"stdout,omitempty"`
}

func (j *jobRun) payload() jobPayload {
	return jobPayload{Token: j.token, Modules: j.modules, Conf: j.conf, Sink: j.sink, Volumes: j.volumes,
		Output: outputRef{Volume: j.volumes[j.out.Volume], Dir: j.out.Dir, URL: j.outURL, Stdout: j.stdout}}
}

// publish sends the job's progress without blocking: a slow watcher gets
// the latest state, not every state.
func (j *jobRun) publish(p api.Progress) {
	select {
	case <-j.progress:
	default:
	}
	j.progress <- p
}

// newToken is a secret: a job's for reading its shuffle blocks, or an
// API bearer token.
func newToken() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("grid: no randomness for a token: %v", err))
	}
	return hex.EncodeToString(b)
}

// runningOf counts a tenant's jobs that have not ended.
func (c *coordinator) runningOf(tenant string) int {
	n := 0
	c.read(func(cr *core.Core) {
		for _, ji := range cr.Jobs() {
			if ji.Tenant == tenant && (ji.State == core.Running || ji.State == core.Committing) {
				n++
			}
		}
	})
	return n
}

// result is a finished job's result on standard output, checked to be
// whole.
func (c *coordinator) result(ctx context.Context, id string) (*printed, error) {
	var rec *core.Record
	var payload []byte
	c.read(func(cr *core.Core) {
		rec, _ = cr.Record(id)
		payload, _ = cr.Payload(id)
	})
	if rec == nil {
		return nil, fmt.Errorf("job %s has not finished", id)
	}
	var p jobPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, err
	}
	if !p.Output.Stdout {
		return nil, fmt.Errorf("the job wrote its result to %s, not to standard output", p.Output.URL)
	}
	st, err := c.stores.Store(c.results)
	if err != nil {
		return nil, err
	}
	r := &printed{store: st, volume: c.results.Name, dir: p.Output.Dir, partitions: rec.Partitions, inline: rec.Inline}
	return r, r.check(ctx)
}

package grid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmgrid/wasmgrid/allocator"
	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/internal/executor"
	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/planner"
)

// coordinator owns the allocator and every job's scheduler. One goroutine,
// run, owns all of its state; others talk to it over channels.
type coordinator struct {
	logger   *slog.Logger
	metrics  *metrics
	stateDir string
	alloc    *allocator.Allocator
	agents   map[string]*agentRef
	names    []string // agent names, sorted
	jobs     map[string]*jobRun
	statuses chan taskStatus
	submits  chan *jobRun
	cancels  chan string
	joins    chan *agentRef
	losses   chan string
	suspects chan string // agents that may be gone: offer them no more
	queries  chan func() // run on the loop: reads of its state for the API
	lost     []string    // agents declared lost, for the API
	// usage is the slot time each tenant's attempts have held, from
	// launch to report.
	usage   map[string]*usage
	stopped chan struct{} // closed when run returns
	nextJob atomic.Uint64

	// stores are the volumes' stores, for planning and commits; outputs
	// the output directories of running jobs; results the volume of
	// results that are printed rather than written.
	stores  *storage.Cache
	outputs outputs
	results storage.Volume
	// commits are the commits of finished jobs, which run beside the loop.
	commits sync.WaitGroup
	// grants are the volumes of a job whose request names none.
	grants func(tenant string) storage.Grants
}

func newCoordinator(logger *slog.Logger, m *metrics, statuses chan taskStatus, stateDir string) (*coordinator, error) {
	results, err := resultsVolume(stateDir)
	if err != nil {
		return nil, fmt.Errorf("grid: results directory: %w", err)
	}
	return &coordinator{
		stores:   &storage.Cache{},
		results:  results,
		grants:   func(string) storage.Grants { return storage.Grants{} },
		logger:   logger,
		metrics:  m,
		stateDir: stateDir,
		alloc:    newAllocator(),
		agents:   map[string]*agentRef{},
		joins:    make(chan *agentRef),
		losses:   make(chan string),
		suspects: make(chan string),
		queries:  make(chan func()),
		usage:    map[string]*usage{},
		jobs:     map[string]*jobRun{},
		statuses: statuses,
		submits:  make(chan *jobRun),
		cancels:  make(chan string, 16),
		stopped:  make(chan struct{}),
	}, nil
}

// newAllocator is the coordinator's allocator: one "default" tenant,
// decline filters on the wall clock.
func newAllocator() *allocator.Allocator {
	a, err := allocator.NewWithConfig(allocator.Config{Clock: time.Now})
	if err != nil {
		panic(err) // the config is constant and valid
	}
	return a
}

// agentLink carries the coordinator's orders to one agent: an agent of
// this process, or a remote one over the control plane.
type agentLink interface {
	// launch queues a task attempt; it must not block for long (the
	// coordinator launches only within the agent's resources).
	launch(l launch)
	// removeJob stops the job's attempts on the agent and deletes its
	// shuffle files.
	removeJob(job string) error
}

// agentRef is an agent as the coordinator knows it.
type agentRef struct {
	name      string
	resources allocator.Resources
	blockAddr string
	link      agentLink
	joined    time.Time
	suspect   bool // gone from gossip or the control plane; offered no more
}

// localLink is the link to an agent of this process.
type localLink struct{ a *agent }

func (l localLink) launch(x launch)            { l.a.launches <- x }
func (l localLink) removeJob(job string) error { return l.a.removeJob(job) }

// addAgent registers an agent of this process; only before run.
func (c *coordinator) addAgent(a *agent) error {
	return c.join(&agentRef{name: a.name, resources: a.resources, blockAddr: a.blocks.Addr().String(), link: localLink{a}, joined: time.Now()})
}

// join adds an agent to the pool.
func (c *coordinator) join(ref *agentRef) error {
	if _, ok := c.agents[ref.name]; ok {
		return fmt.Errorf("grid: agent %s is already registered", ref.name)
	}
	if err := c.alloc.AddAgent(allocator.AgentID(ref.name), ref.resources); err != nil {
		return err
	}
	c.agents[ref.name] = ref
	c.lost = slices.DeleteFunc(c.lost, func(n string) bool { return n == ref.name })
	c.names = append(c.names, ref.name)
	slices.Sort(c.names)
	c.logger.Info("agent joined", "agent", ref.name, "resources", ref.resources.String(), "blocks", ref.blockAddr)
	return nil
}

// suspect stops offering an agent that left gossip or lost its control
// connection: it has its grace period to come back (as a new
// registration) before it is declared lost, and launching tasks on it
// meanwhile would only make them wait for that. Its running attempts
// keep their resources until they report or are lost.
func (c *coordinator) suspect(name string) {
	ref, ok := c.agents[name]
	if !ok || ref.suspect {
		return
	}
	ref.suspect = true
	c.alloc.RemoveAgent(allocator.AgentID(name))
	c.logger.Warn("agent suspect: no more offers", "agent", name)
}

// lose takes a lost agent out: its offers are rescinded, its running
// attempts reported lost (and rescheduled), its map outputs forgotten
// (and recomputed from lineage when needed). Its late reports are
// refused, as it is no longer registered.
func (c *coordinator) lose(name string) {
	if _, ok := c.agents[name]; !ok {
		return
	}
	delete(c.agents, name)
	c.names = slices.DeleteFunc(c.names, func(n string) bool { return n == name })
	if !slices.Contains(c.lost, name) {
		c.lost = append(c.lost, name)
	}
	c.alloc.RemoveAgent(allocator.AgentID(name))
	c.metrics.agentsLost.Inc()
	for _, j := range c.jobs {
		for _, t := range j.sched.AgentLost(name) {
			c.alloc.Recover(allocator.AgentID(name), allocator.FrameworkID(j.id), j.taskRes)
			c.metrics.runningTasks.Dec()
			c.use(j.tenantName(), -1)
			j.sched.Failed(t.Key, t.Attempt, planner.Failure{Kind: planner.Lost, Msg: "agent " + name + " was lost"})
		}
		if err := j.sched.Err(); err != nil {
			j.fail(err)
		}
		j.publish()
	}
	c.logger.Warn("agent lost", "agent", name)
}

// run is the coordinator's loop. When ctx ends it fails the jobs still
// running and returns.
func (c *coordinator) run(ctx context.Context) {
	defer close(c.stopped)
	defer c.stores.Close()
	defer c.commits.Wait()
	// wake runs a cycle when decline filters lapse: an agent a job
	// refused may then be offered to it again.
	wake := time.NewTimer(time.Hour)
	wake.Stop()
	defer wake.Stop()
	for {
		select {
		case <-wake.C:
		case j := <-c.submits:
			c.start(j)
		case st := <-c.statuses:
			c.handleStatus(st)
		case ref := <-c.joins:
			if err := c.join(ref); err != nil {
				c.logger.Error("agent join", "agent", ref.name, "err", err)
			}
		case name := <-c.losses:
			c.lose(name)
		case name := <-c.suspects:
			c.suspect(name)
		case q := <-c.queries:
			q()
		case id := <-c.cancels:
			if j := c.jobs[id]; j != nil {
				j.fail(errors.New("canceled"))
			}
		case <-ctx.Done():
			for _, j := range c.jobs {
				j.fail(fmt.Errorf("grid stopped: %w", context.Cause(ctx)))
				c.finish(j)
			}
			return
		}
		if c.schedule() {
			wake.Reset(refuseFor)
		}
	}
}

func (c *coordinator) start(j *jobRun) {
	c.jobs[j.id] = j
	if err := c.alloc.AddFramework(allocator.FrameworkID(j.id), j.tenantName()); err != nil {
		j.fail(err)
	}
	c.logger.Info("job started", "job", j.id, "name", j.req.Spec.Name, "stages", len(j.sched.Plan().Stages))
	j.publish()
}

// handleStatus applies an agent's report to its job.
func (c *coordinator) handleStatus(st taskStatus) {
	j := c.jobs[st.job]
	if j == nil {
		return
	}
	if _, ok := c.agents[st.agent]; !ok {
		// Declared lost: its attempts were already rescheduled.
		c.metrics.attempts.WithLabelValues("stale").Inc()
		return
	}
	c.alloc.Recover(allocator.AgentID(st.agent), allocator.FrameworkID(j.id), j.taskRes)
	c.metrics.runningTasks.Dec()
	c.use(j.tenantName(), -1)
	if t, ok := j.launched[attemptKey{st.key, st.attempt}]; ok {
		rt := time.Since(t)
		j.roundTrips = append(j.roundTrips, rt)
		c.metrics.roundTrip.Observe(rt.Seconds())
		delete(j.launched, attemptKey{st.key, st.attempt})
	}
	kind := "map"
	if j.sched.Plan().Stages[st.key.Stage].IsResult() {
		kind = "result"
	}
	c.metrics.taskSeconds.WithLabelValues(kind).Observe(st.elapsed.Seconds())
	if st.err == nil {
		c.succeeded(j, st)
	} else {
		c.failed(j, st)
	}
	j.publish()
}

func (c *coordinator) succeeded(j *jobRun, st taskStatus) {
	stage := j.sched.Plan().Stages[st.key.Stage]
	if stage.Sample != nil && st.res != nil {
		j.sched.RecordSamples(st.key, st.attempt, st.res.Samples)
	}
	// A result attempt's file is where the coordinator told it to write,
	// whatever its report says.
	attemptFile := j.out.AttemptPath(st.key.Partition, st.attempt)
	if !j.sched.Succeeded(st.key, st.attempt) {
		// A stale or duplicate attempt: its output is never used.
		c.metrics.attempts.WithLabelValues("stale").Inc()
		j.logAttempt(st, "stale")
		if stage.IsResult() {
			if err := j.out.Store.Remove(context.Background(), attemptFile); err != nil {
				c.logger.Warn("remove a stale attempt's output", "job", j.id, "task", st.key.String(), "err", err)
			}
		}
		return
	}
	if stage.IsResult() {
		// The partition's one winner: the commit moves it into place.
		j.parts[st.key.Partition] = attemptFile
		j.recordsOut.Add(st.res.RecordsOut)
		c.metrics.recordsOut.Add(float64(st.res.RecordsOut))
	}
	if stage.Splits != nil && stage.Sample == nil {
		j.recordsIn.Add(st.res.RecordsIn)
		j.bytesIn.Add(st.res.BytesIn)
		c.metrics.recordsIn.Add(float64(st.res.RecordsIn))
		c.metrics.bytesIn.Add(float64(st.res.BytesIn))
	}
	c.metrics.attempts.WithLabelValues("succeeded").Inc()
	j.logAttempt(st, "succeeded")
	j.peakRSS = max(j.peakRSS, st.res.PeakRSS)
}

func (c *coordinator) failed(j *jobRun, st taskStatus) {
	f := executor.FailureOf(st.err)
	if !j.sched.Failed(st.key, st.attempt, f) {
		c.metrics.attempts.WithLabelValues("stale").Inc()
		j.logAttempt(st, "stale")
		return
	}
	c.metrics.attempts.WithLabelValues(failureLabel(f.Kind)).Inc()
	j.logAttempt(st, failureLabel(f.Kind))
	j.failedAttempts++
	c.logger.Warn("task attempt failed", "job", j.id, "task", st.key.String(), "attempt", st.attempt, "agent", st.agent, "kind", f.Kind, "err", st.err)
	if err := j.sched.Err(); err != nil {
		j.fail(err)
	}
}

// refuseFor is how long a job is not offered an agent it could not use
// (its only runnable tasks last failed there), as Mesos' refuse_seconds;
// the coordinator runs a cycle when it lapses.
const refuseFor = time.Second

// schedule finishes jobs that are over and offers free resources to the
// jobs that have work. It reports whether a job refused an agent, so that
// the caller runs it again when the refusal lapses.
func (c *coordinator) schedule() (refused bool) {
	for _, j := range c.jobs {
		if j.over() {
			c.finish(j)
		}
	}
	// An offer a job cannot use is declined with a filter, and the cycle
	// runs again so that the job is offered another agent now rather than
	// at the next event. Each round filters out at least one agent.
	for range len(c.agents) + 1 {
		c.setDemands()
		if !c.offerRound() {
			break
		}
		refused = true
	}
	return refused
}

// setDemands tells the allocator what each job can start now: offers of
// one task each, as many as it has runnable tasks (so that shares count
// what jobs use, and one agent serves several jobs in a cycle), or none.
func (c *coordinator) setDemands() {
	for _, j := range c.jobs {
		id := allocator.FrameworkID(j.id)
		if n := j.sched.Runnable(); n > 0 && j.err == nil {
			if err := c.alloc.SetDemand(id, allocator.Demand{Task: j.taskRes, Tasks: n}); err != nil {
				c.logger.Error("set demand", "job", j.id, "err", err)
			}
			if j.suppressed {
				c.alloc.Revive(id)
				j.suppressed = false
			}
		} else if !j.suppressed {
			c.alloc.Suppress(id)
			j.suppressed = true
		}
	}
}

// offerRound runs one offer cycle and launches what the offers hold. It
// reports whether some offer could not be used.
func (c *coordinator) offerRound() (refused bool) {
	for _, o := range c.alloc.Allocate() {
		j := c.jobs[string(o.Framework)]
		used := allocator.Resources{}
		for o.Resources.Sub(used).Contains(j.taskRes) {
			spec, ok := j.sched.Next(string(o.Agent), len(c.agents) == 1)
			if !ok {
				break
			}
			used = used.Add(j.taskRes)
			j.attempts++
			l := launch{ctx: j.ctx, job: j.id, tenant: j.tenantName(), token: j.token, spec: spec, modules: j.modules, conf: j.req.Spec.Conf, volumes: j.volumes}
			if spec.Stage.IsResult() {
				l.outputFile = j.out.AttemptPath(spec.Key.Partition, spec.Attempt)
				l.outputVolume = j.out.Volume
				l.outputFormat = outputFormat(j.req.Spec.Sink, spec.Key.Partition)
			}
			l.blockServers = c.blockServers(spec)
			c.agents[string(o.Agent)].link.launch(l)
			c.metrics.runningTasks.Inc()
			c.use(j.tenantName(), +1)
			j.launched[attemptKey{spec.Key, spec.Attempt}] = time.Now()
		}
		if used.IsZero() && j.sched.HasRunnable() {
			refused = true
			if err := c.alloc.DeclineWithFilter(o.ID, allocator.Filter{Duration: refuseFor}); err != nil {
				c.logger.Error("decline offer", "err", err)
			}
			continue
		}
		if err := c.alloc.Accept(o.ID, used); err != nil {
			c.logger.Error("accept offer", "err", err)
		}
	}
	return refused
}

// usage integrates a tenant's running attempts over time.
type usage struct {
	seconds float64 // up to since
	running int
	since   time.Time
}

// use records that a tenant's running attempts changed by delta.
func (c *coordinator) use(tenant string, delta int) {
	u := c.usage[tenant]
	if u == nil {
		u = &usage{since: time.Now()}
		c.usage[tenant] = u
	}
	now := time.Now()
	u.seconds += float64(u.running) * now.Sub(u.since).Seconds()
	u.running += delta
	u.since = now
}

// taskSeconds is the slot time a tenant's attempts have held, running
// ones up to now.
func (c *coordinator) taskSeconds(tenant string) float64 {
	u := c.usage[tenant]
	if u == nil {
		return 0
	}
	return u.seconds + float64(u.running)*time.Since(u.since).Seconds()
}

// blockServers are the block server addresses of the agents whose map
// outputs spec reads.
func (c *coordinator) blockServers(spec planner.TaskSpec) map[string]string {
	m := map[string]string{}
	add := func(ins []planner.MapOutputLoc) {
		for _, in := range ins {
			if ref, ok := c.agents[in.Agent]; ok {
				m[in.Agent] = ref.blockAddr
			}
		}
	}
	add(spec.Inputs)
	add(spec.RightInputs) // a join's right side may live on other agents
	for _, ins := range spec.BroadcastInputs {
		add(ins)
	}
	return m
}

// query runs fn on the coordinator's loop and waits for it.
func (c *coordinator) query(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case c.queries <- func() { fn(); close(done) }:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-c.stopped:
		return errStopped
	}
	<-done
	return nil
}

// finish ends a job: its shuffle files are deleted, and its result is
// committed or discarded beside the loop (a commit to object storage
// copies the parts), after which its waiters are told.
func (c *coordinator) finish(j *jobRun) {
	delete(c.jobs, j.id)
	c.alloc.RemoveFramework(allocator.FrameworkID(j.id))
	j.cancel()
	for _, name := range c.names {
		if err := c.agents[name].link.removeJob(j.id); err != nil {
			c.logger.Warn("remove shuffle files", "job", j.id, "agent", name, "err", err)
		}
	}
	c.commits.Go(func() {
		// The loop no longer touches j: this goroutine owns it until done
		// is closed.
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		defer cancel()
		if j.err == nil {
			j.err = c.commitOutput(ctx, j)
		}
		if j.err != nil {
			c.abortOutput(ctx, j)
		}
		c.outputs.release(j.out.String())
		j.publish()
		j.summary = j.summarize()
		if j.err != nil {
			c.metrics.jobs.WithLabelValues("failed").Inc()
		} else {
			c.metrics.jobs.WithLabelValues("succeeded").Inc()
		}
		c.logger.Info("job finished", "job", j.id, "err", j.err, "duration", j.summary.Duration)
		close(j.done)
	})
}

// commitTimeout bounds a job's commit: moving its parts into place.
const commitTimeout = 30 * time.Minute

// submit registers a planned job with the coordinator's loop.
func (c *coordinator) submit(ctx context.Context, req admission, plan *planner.Plan, blobs map[string]moduleBlob, volumes map[string]storage.Volume, taskRes allocator.Resources) (*Job, error) {
	id := fmt.Sprintf("job-%d", c.nextJob.Add(1))
	j := newJobRun(id, req, plan, blobs, taskRes, volumes)
	if err := c.prepareOutput(ctx, j); err != nil {
		return nil, err
	}
	select {
	case c.submits <- j:
	case <-ctx.Done():
		c.abortOutput(context.WithoutCancel(ctx), j)
		c.outputs.release(j.out.String())
		return nil, context.Cause(ctx)
	case <-c.stopped:
		c.abortOutput(context.WithoutCancel(ctx), j)
		c.outputs.release(j.out.String())
		return nil, errStopped
	}
	return &Job{run: j, cancel: func() {
		select {
		case c.cancels <- id:
		default:
		}
	}}, nil
}

func failureLabel(k planner.FailureKind) string {
	switch k {
	case planner.FetchFailed:
		return "fetch_failed"
	case planner.Lost:
		return "lost"
	case planner.Fatal:
		return "fatal"
	}
	return "failed"
}

// jobRun is a job's state in the coordinator. Fields other than the
// atomics and channels belong to the coordinator's goroutine.
type jobRun struct {
	id      string
	token   string // shown by the job's tasks to the block servers
	req     admission
	sched   *planner.Scheduler
	modules []moduleBlob
	taskRes allocator.Resources
	// suppressed: the allocator makes the job no offers (nothing runnable).
	suppressed bool
	ctx        context.Context
	cancel     context.CancelFunc
	start      time.Time

	recordsIn, recordsOut, bytesIn atomic.Int64
	attempts, failedAttempts       int
	peakRSS                        int64 // the largest executor peak RSS its tasks reported

	// launched is when each attempt in flight was launched; roundTrips
	// the launch-to-report times of those that reported; logs the
	// attempts' outcomes, newest last (at most maxTaskLogs).
	launched   map[attemptKey]time.Time
	roundTrips []time.Duration
	logs       []api.TaskLog

	// out is where the result goes (outURL as the user names it), and
	// parts the winning attempt's file of each of its partitions; a
	// stdout result is kept in resultDir until it is read.
	out       *storage.Output
	outURL    string
	parts     []string
	stdout    bool
	resultDir string
	// volumes are the volumes the job's tasks read and write, by name.
	volumes map[string]storage.Volume

	err      error
	progress chan api.Progress
	done     chan struct{}
	summary  *api.Summary
}

func newJobRun(id string, req admission, plan *planner.Plan, blobs map[string]moduleBlob, taskRes allocator.Resources, volumes map[string]storage.Volume) *jobRun {
	ctx, cancel := context.WithCancel(context.Background())
	var mods []moduleBlob
	for _, name := range slices.Sorted(maps.Keys(blobs)) {
		mods = append(mods, blobs[name])
	}
	return &jobRun{
		id:       id,
		token:    newToken(),
		req:      req,
		sched:    planner.NewScheduler(plan, planner.Config{MaxAttempts: req.Spec.Conf.MaxAttempts}),
		modules:  mods,
		taskRes:  taskRes,
		ctx:      ctx,
		cancel:   cancel,
		start:    time.Now(),
		progress: make(chan api.Progress, 1),
		done:     make(chan struct{}),
		launched: map[attemptKey]time.Time{},
		volumes:  maps.Clone(volumes),
	}
}

// attemptKey names one attempt of one task of a job.
type attemptKey struct {
	key     planner.TaskKey
	attempt int
}

const maxTaskLogs = 5000

func (j *jobRun) logAttempt(st taskStatus, outcome string) {
	l := api.TaskLog{Time: time.Now(), Task: st.key.String(), Attempt: st.attempt, Agent: st.agent, Outcome: outcome, Elapsed: st.elapsed}
	if st.err != nil {
		l.Error = st.err.Error()
		var e *executor.Error
		if errors.As(st.err, &e) {
			l.Log = e.Log
		}
	}
	if len(j.logs) >= maxTaskLogs {
		j.logs = slices.Delete(j.logs, 0, len(j.logs)-maxTaskLogs+1)
	}
	j.logs = append(j.logs, l)
}

// percentile is the q-quantile of ds (sorted in place), or 0.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
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

// fail records the first reason the job fails and stops its tasks.
func (j *jobRun) tenantName() string { return j.req.tenant() }

func (j *jobRun) fail(err error) {
	if j.err == nil {
		j.err = err
	}
	j.cancel()
}

// over reports whether nothing more will happen: the result is complete, or
// the job failed and its last attempt has come back.
func (j *jobRun) over() bool {
	if j.err != nil {
		return j.sched.Running() == 0
	}
	return j.sched.Done()
}

// publish sends the job's progress without blocking: a slow watcher gets
// the latest state, not every state.
func (j *jobRun) publish() {
	p := j.snapshot()
	select {
	case <-j.progress:
	default:
	}
	j.progress <- p
}

func (j *jobRun) snapshot() api.Progress {
	p := api.Progress{
		Job:        j.id,
		RecordsIn:  j.recordsIn.Load(),
		RecordsOut: j.recordsOut.Load(),
		BytesIn:    j.bytesIn.Load(),
		Elapsed:    time.Since(j.start),
	}
	plan := j.sched.Plan()
	for _, sp := range j.sched.Progress() {
		p.Stages = append(p.Stages, api.StageProgress{
			ID:      sp.Stage,
			Name:    stageName(plan.Stages[sp.Stage]),
			Tasks:   sp.Tasks,
			Running: sp.Running,
			Done:    sp.Done,
		})
	}
	return p
}

func stageName(s *planner.Stage) string {
	var parts []string
	if s.Reduce != nil {
		parts = append(parts, s.Reduce.Function)
	}
	for _, st := range s.Steps {
		switch {
		case st.Func != (planner.FuncRef{}):
			parts = append(parts, st.Func.Function)
		case st.Op == planner.OpSample:
			parts = append(parts, "sample")
		default:
			parts = append(parts, "join") // a hash join: a broadcast, or a cache in place
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "read")
	}
	return strings.Join(parts, "|")
}

func (j *jobRun) summarize() *api.Summary {
	plan := j.sched.Plan()
	tasks := 0
	for _, s := range plan.Stages {
		tasks += s.Partitions
	}
	return &api.Summary{
		Job:             j.id,
		Name:            j.req.Spec.Name,
		RecordsIn:       j.recordsIn.Load(),
		RecordsOut:      j.recordsOut.Load(),
		BytesIn:         j.bytesIn.Load(),
		Stages:          len(plan.Stages),
		Tasks:           tasks,
		Attempts:        j.attempts,
		FailedAttempts:  j.failedAttempts,
		Duration:        time.Since(j.start),
		Output:          j.outURL,
		Stdout:          j.stdout,
		Partitions:      plan.Result().Partitions,
		ExecutorPeakRSS: j.peakRSS,
		Plan:            plan.String(),
		RoundTripP50:    percentile(j.roundTrips, 0.50),
		RoundTripP99:    percentile(j.roundTrips, 0.99),
	}
}

package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Pool runs an agent's task attempts in executor processes, one per tenant:
// a tenant's attempts share its executor, and attempts of different tenants
// never share a process. What an attempt does to its executor (spin past
// its deadline, exhaust its memory, crash it) costs its own tenant's
// attempts at most.
//
// Each executor's memory is the sum of the memory reserved for its running
// attempts (task.memory, what the allocator set aside for each) plus a
// fixed Overhead for the Go runtime and compiled modules, measured as the
// process's resident memory: linear memories, host-side buffers and all.
// The kernel enforces it where cgroups allow (plus a page-cache allowance,
// cgroupSlack), and a watchdog of the agent enforces it everywhere: it
// reads the executor's resident memory every WatchEvery while attempts run
// and kills an executor that passes its limit. Its attempts then fail with
// a *MemoryError, which the scheduler retries like any task error.
//
// Where cgroups allow, each executor also has an equal CPU weight, so that
// one tenant's spinning guests take no more than their share of the CPU
// from another tenant's executor, and a CFS quota equal to the CPU reserved
// for its running attempts (at least one CPU).
//
// An executor that dies is replaced at its tenant's next launch; one without
// attempts for IdleTimeout is stopped. Run owns every executor and stops
// them all when it returns.
type Pool struct {
	cfg    PoolConfig
	logger *slog.Logger
	spawn  *Spawner
	cg     cgroupSetup

	ready chan struct{} // closed when Run has set cg up and started spawn

	mu      sync.Mutex // protects execs, next and the executors' running sets
	execs   map[string]*tenantExecutor
	next    uint64
	stopped bool

	wg sync.WaitGroup // the executors' monitors
}

// PoolConfig configures a Pool. Zero fields mean the defaults.
type PoolConfig struct {
	// Argv starts an executor (see StartProcess).
	Argv []string
	// Config configures each executor.
	Config Config
	// Overhead is the resident memory an executor may use beyond its
	// attempts' reservations: its Go runtime and compiled modules
	// (default DefaultOverhead).
	Overhead int64
	// IdleTimeout stops an executor that has had no attempt for this long
	// (default 1 minute).
	IdleTimeout time.Duration
	// WatchEvery is how often the watchdog reads the resident memory of an
	// executor that runs attempts (default 50ms).
	WatchEvery time.Duration
	// NoCgroups runs executors without cgroups.
	NoCgroups bool
	// Logger receives the pool's events; nil discards them.
	Logger *slog.Logger

	// cgroupMount and selfCgroup locate cgroups (tests fake them).
	cgroupMount, selfCgroup string
	// now is the clock of the idle timeout.
	now func() time.Time
}

// DefaultOverhead is the resident memory an executor may use beyond what
// its attempts reserved: its Go runtime, its modules' machine code and
// decoded form, and the garbage of loading them. Measured with the Go
// word-count guest (the largest guest: 12.7 MB of machine code): 24-34 MiB
// resident between and during its tasks, and 90 MiB at the peak of
// compiling it on a cold compilation cache (RATIONALE.md). Under the race
// detector, whose shadow memory triples an executor's, it is raceOverhead
// more.
const DefaultOverhead = 128<<20 + raceOverhead

// cgroupSlack is added to the cgroup's memory limit above the watchdog's:
// the kernel counts page cache (the task's input files, its shuffle files
// on their way to disk) that the watchdog does not, and it reclaims that
// first; the watchdog, which says why, should be the one that acts.
const cgroupSlack = 64 << 20

// Reservation is what the allocator set aside for one attempt.
type Reservation struct {
	Memory    int64 // bytes: the job's task.memory
	CPUMillis int64
}

// tenantExecutor is one tenant's executor process.
type tenantExecutor struct {
	tenant string
	proc   *Process
	cg     *cgroup // nil without cgroups

	// Guarded by Pool.mu:
	running   map[uint64]Reservation
	idleSince time.Time
	peak      int64 // the most resident memory the watchdog saw

	// memErr is why the pool killed the executor (or why the kernel's
	// cgroup did); read after exited is closed.
	memErr *MemoryError
	exited chan struct{} // closed once the process is reaped and explained
}

// NewPool returns a pool; Run starts it.
func NewPool(cfg PoolConfig) *Pool {
	if cfg.Overhead <= 0 {
		cfg.Overhead = DefaultOverhead
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = time.Minute
	}
	if cfg.WatchEvery <= 0 {
		cfg.WatchEvery = 50 * time.Millisecond
	}
	if cfg.cgroupMount == "" {
		cfg.cgroupMount, cfg.selfCgroup = cgroupMount, "/proc/self/cgroup"
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Pool{cfg: cfg, logger: logger, spawn: NewSpawner(), ready: make(chan struct{}), execs: map[string]*tenantExecutor{}}
}

// Run starts executors as Exec asks until ctx ends, stops the executors
// idle for longer than IdleTimeout, and, once ctx has ended, stops every
// executor (each has grace to finish before it is killed) and waits for
// them.
func (p *Pool) Run(ctx context.Context, grace time.Duration) {
	if p.cfg.NoCgroups {
		p.cg = cgroupSetup{missing: []string{"turned off"}}
	} else {
		p.cg = findCgroups(p.cfg.cgroupMount, p.cfg.selfCgroup)
		p.cg.sweep()
	}
	if len(p.cg.missing) > 0 {
		p.logger.Info("executors run without some cgroups; the RSS watchdog still limits their memory", "memory_cgroup", p.cg.memParent != "", "cpu_cgroup", p.cg.cpuParent != "", "why", strings.Join(p.cg.missing, "; "))
	}
	spawnCtx, stopSpawner := context.WithCancel(context.Background())
	spawned := make(chan struct{})
	go func() {
		defer close(spawned)
		p.spawn.Run(spawnCtx)
	}()
	close(p.ready)
	tick := time.NewTicker(max(p.cfg.IdleTimeout/4, 10*time.Millisecond))
	defer tick.Stop()
loop:
	for {
		select {
		case <-tick.C:
			for _, e := range p.idle(p.cfg.now()) {
				p.logger.Debug("stopping an idle executor", "tenant", e.tenant, "pid", e.proc.Pid())
				e.proc.Close(grace)
			}
		case <-ctx.Done():
			break loop
		}
	}
	p.mu.Lock()
	p.stopped = true
	execs := make([]*tenantExecutor, 0, len(p.execs))
	for _, e := range p.execs {
		execs = append(execs, e)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range execs {
		wg.Go(func() { e.proc.Close(grace) })
	}
	wg.Wait()
	p.wg.Wait()
	// Last: the spawner's thread ends, and with it any executor that
	// survived (parent-death signal).
	stopSpawner()
	<-spawned
}

// idle removes and returns the executors that have had no attempt since
// before now - IdleTimeout.
func (p *Pool) idle(now time.Time) []*tenantExecutor {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*tenantExecutor
	for t, e := range p.execs {
		if len(e.running) == 0 && now.Sub(e.idleSince) >= p.cfg.IdleTimeout {
			delete(p.execs, t)
			out = append(out, e)
		}
	}
	return out
}

// ErrPoolStopped is the error of an Exec after the pool has stopped.
var ErrPoolStopped = errors.New("executor: the agent is stopping")

// Exec runs one attempt of tenant's in its executor, starting one if there
// is none or the last one died, with the attempt's reservation added to the
// executor's limits for as long as it runs. It returns as Process.Run does;
// an executor killed for its memory fails its attempts with a *DiedError
// whose Cause is a *MemoryError.
func (p *Pool) Exec(ctx context.Context, tenant string, m *TaskMsg, res Reservation, grace time.Duration) (Response, error) {
	e, id, err := p.acquire(ctx, tenant, res)
	if err != nil {
		return Response{}, err
	}
	resp, err := e.proc.Run(ctx, m, grace)
	var died *DiedError
	if errors.As(err, &died) {
		// Explained with this attempt still in the running set.
		<-e.exited
		if e.memErr != nil {
			err = &DiedError{Cause: e.memErr, Killed: true}
		}
	}
	p.release(e, id)
	return resp, err
}

// PeerLost tells every executor that an agent was declared lost, so that
// their attempts stop fetching from its block server
// (Process.PeerLost).
func (p *Pool) PeerLost(agent, blockAddr string) {
	p.mu.Lock()
	execs := make([]*tenantExecutor, 0, len(p.execs))
	for _, e := range p.execs {
		execs = append(execs, e)
	}
	p.mu.Unlock()
	for _, e := range execs {
		e.proc.PeerLost(agent, blockAddr)
	}
}

// acquire returns tenant's executor with res added to its running set.
func (p *Pool) acquire(ctx context.Context, tenant string, res Reservation) (*tenantExecutor, uint64, error) {
	select {
	case <-p.ready:
	default:
		select {
		case <-p.ready:
		case <-ctx.Done():
			return nil, 0, context.Cause(ctx)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil, 0, ErrPoolStopped
	}
	e := p.execs[tenant]
	if e != nil {
		select {
		case <-e.proc.Done():
			p.logger.Warn("restarting the executor of a tenant", "tenant", tenant, "pid", e.proc.Pid())
			e = nil
		default:
		}
	}
	if e == nil {
		var err error
		if e, err = p.start(ctx, tenant); err != nil {
			return nil, 0, err
		}
		p.execs[tenant] = e
	}
	p.next++
	e.running[p.next] = res
	p.limit(e)
	return e, p.next, nil
}

// release removes an attempt from its executor's running set. The
// executor has released the attempt's memory by the time it answers.
func (p *Pool) release(e *tenantExecutor, id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(e.running, id)
	if len(e.running) == 0 {
		e.idleSince = p.cfg.now()
	}
	p.limit(e)
}

// start starts tenant's executor, puts it in its cgroups and starts its
// monitor. Called with p.mu held.
func (p *Pool) start(ctx context.Context, tenant string) (*tenantExecutor, error) {
	cfg := p.cfg.Config
	cfg.Tenant = tenant
	proc, err := p.spawn.Start(ctx, p.cfg.Argv, cfg, p.logger)
	if err != nil {
		return nil, err
	}
	e := &tenantExecutor{tenant: tenant, proc: proc, running: map[uint64]Reservation{}, exited: make(chan struct{})}
	if p.cg.usable() {
		cg, err := p.cg.create(proc.Pid())
		if err != nil {
			p.logger.Warn("executor cgroup", "tenant", tenant, "pid", proc.Pid(), "err", err)
		}
		e.cg = cg
		if err := cg.setWeight(1); err != nil {
			p.logger.Warn("executor cgroup", "tenant", tenant, "pid", proc.Pid(), "err", err)
		}
	}
	p.logger.Info("executor started", "tenant", tenant, "pid", proc.Pid(), "memory_cgroup", e.cg != nil && e.cg.memDir != "", "cpu_cgroup", e.cg != nil && e.cg.cpuDir != "")
	p.wg.Go(func() { p.monitor(e) })
	return e, nil
}

// limit is the resident memory that e may use now, which it sets in e's
// cgroups with e's CPU quota. Called with p.mu held, which guards e.cg.
func (p *Pool) limit(e *tenantExecutor) int64 {
	limit := p.cfg.Overhead
	var cpu int64
	for _, r := range e.running {
		limit += r.Memory
		cpu += r.CPUMillis
	}
	if e.cg != nil {
		if err := e.cg.setMemory(limit + cgroupSlack); err != nil {
			// Lowering it fails while the executor holds more (the
			// kernel cannot reclaim it); the watchdog acts if it stays.
			p.logger.Debug("executor cgroup", "tenant", e.tenant, "pid", e.proc.Pid(), "err", err)
		}
		if err := e.cg.setQuota(max(cpu, 1000)); err != nil {
			p.logger.Debug("executor cgroup", "tenant", e.tenant, "pid", e.proc.Pid(), "err", err)
		}
	}
	return limit
}

// monitor watches e's resident memory while it runs attempts, until it
// exits; then it says why it died, if memory was the reason, and removes
// its cgroups.
func (p *Pool) monitor(e *tenantExecutor) {
	t := time.NewTicker(p.cfg.WatchEvery)
	defer t.Stop()
	for {
		select {
		case <-e.proc.Done():
			p.exited(e)
			return
		case <-t.C:
			p.watch(e)
		}
	}
}

// watch kills e if its resident memory passes its limit.
func (p *Pool) watch(e *tenantExecutor) {
	p.mu.Lock()
	if len(e.running) == 0 || e.memErr != nil {
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	rss, err := residentBytes(e.proc.Pid())
	if err != nil {
		return // it is exiting
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	e.peak = max(e.peak, rss)
	limit := p.cfg.Overhead
	var tasks []int64
	for _, r := range e.running {
		limit += r.Memory
		tasks = append(tasks, r.Memory)
	}
	if len(tasks) == 0 || rss <= limit {
		return
	}
	e.memErr = &MemoryError{Tenant: e.tenant, Resident: rss, Limit: limit, Tasks: tasks, Overhead: p.cfg.Overhead}
	p.logger.Warn("killing an executor over its memory", "tenant", e.tenant, "pid", e.proc.Pid(), "resident", rss, "limit", limit)
	e.proc.Kill(e.memErr)
}

// exited explains e's death and removes its cgroups.
func (p *Pool) exited(e *tenantExecutor) {
	p.mu.Lock()
	if e.memErr == nil && e.cg != nil {
		if killed, peak := e.cg.oomKilled(); killed {
			var tasks []int64
			limit := p.cfg.Overhead
			for _, r := range e.running {
				limit += r.Memory
				tasks = append(tasks, r.Memory)
			}
			e.memErr = &MemoryError{Tenant: e.tenant, Resident: peak, Limit: limit, Tasks: tasks, Overhead: p.cfg.Overhead, Cgroup: true}
			p.logger.Warn("the kernel killed an executor at its cgroup's memory limit", "tenant", e.tenant, "pid", e.proc.Pid(), "peak", peak)
		}
	}
	if p.execs[e.tenant] == e {
		delete(p.execs, e.tenant)
	}
	p.mu.Unlock()
	if e.cg != nil {
		e.cg.remove()
	}
	close(e.exited)
}

// MemoryError is an executor killed because its resident memory passed
// the memory reserved for its running attempts.
type MemoryError struct {
	Tenant   string
	Resident int64   // bytes resident when it was killed (at most, for Cgroup)
	Limit    int64   // the watchdog's limit
	Tasks    []int64 // task.memory of each running attempt
	Overhead int64
	// Cgroup: the kernel killed it at the cgroup's limit, Limit plus
	// cgroupSlack, before the watchdog saw it pass Limit.
	Cgroup bool
}

func (e *MemoryError) Error() string {
	var how string
	if e.Cgroup {
		how = fmt.Sprintf("was killed by the kernel at its cgroup's memory limit (%s resident at most), %s over the %s reserved for its running tasks", mibs(e.Resident), mibs(cgroupSlack), mibs(e.Limit))
	} else {
		how = fmt.Sprintf("reached %s resident, over the %s reserved for its running tasks", mibs(e.Resident), mibs(e.Limit))
	}
	return fmt.Sprintf("executor of tenant %s %s (%s + %s overhead): lower the job's memory use or raise task.memory", e.Tenant, how, describeTasks(e.Tasks), mibs(e.Overhead))
}

// describeTasks says what the running attempts reserved:
// "task.memory = 512 MiB each" or "task.memory = 512 MiB + 256 MiB".
func describeTasks(tasks []int64) string {
	same := true
	for _, t := range tasks {
		same = same && t == tasks[0]
	}
	switch {
	case len(tasks) == 0:
		return "no tasks"
	case len(tasks) == 1:
		return "task.memory = " + mibs(tasks[0])
	case same:
		return fmt.Sprintf("%d tasks, task.memory = %s each", len(tasks), mibs(tasks[0]))
	}
	parts := make([]string, len(tasks))
	for i, t := range tasks {
		parts[i] = mibs(t)
	}
	return "task.memory = " + strings.Join(parts, " + ")
}

func mibs(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// residentBytes is the anonymous resident memory of a process: resident
// pages minus those shared with files (its executable, which the agent's
// process maps too, and the page cache), from /proc/PID/statm.
func residentBytes(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "statm"))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return 0, fmt.Errorf("statm of %d: %q", pid, b)
	}
	resident, err1 := strconv.ParseInt(f[1], 10, 64)
	shared, err2 := strconv.ParseInt(f[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("statm of %d: %w", pid, err)
	}
	return (resident - shared) * int64(syscall.Getpagesize()), nil
}

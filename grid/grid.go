package grid

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/wasmgrid/wasmgrid/allocator"
	"github.com/wasmgrid/wasmgrid/internal/certs"
	"github.com/wasmgrid/wasmgrid/internal/executor"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/shuffle/quicnet"
	"github.com/wasmgrid/wasmgrid/wasmexec"
)

// Config configures an embedded grid. Zero fields mean the defaults.
type Config struct {
	// Agents is the number of agents (default 1).
	Agents int
	// Slots is the number of tasks that run at once over all agents
	// (default: the number of CPUs). Each slot is one CPU of an agent.
	Slots int
	// MemoryMiB is the memory all agents offer together (default: the
	// machine's memory).
	MemoryMiB int64
	// StateDir holds the agents' shuffle files and results on their way to
	// standard output (default: a new temporary directory, removed by Run
	// when it returns).
	StateDir string
	// CacheDir keeps compiled modules across runs (default: the user's
	// cache directory; "off" disables it).
	CacheDir string
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Metrics, if set, receives the grid's Prometheus metrics.
	Metrics prometheus.Registerer
	// ExecutorCommand starts an executor process (default: this program,
	// which must call executor.MainIfExecutor first thing in main, or in
	// TestMain for a test binary).
	ExecutorCommand []string
	// ModuleLimits bound what modules may declare.
	ModuleLimits wasmexec.ModuleLimits
	// ModuleLoadTimeout bounds a module's initialization when its manifest
	// is read at submission (default 10s).
	ModuleLoadTimeout time.Duration
	// InspectorMemory, if set, bounds the memory a module's
	// initialization gets when its manifest is read at submission
	// (default: the job's task.memory). A cluster's coordinator bounds it
	// by limits.inspector_memory.
	InspectorMemory int64
	// ShuffleDiskBytes caps the shuffle files each agent keeps (default:
	// 80% of the free space under StateDir, shared among the agents); a map
	// task whose output would pass it fails, and is retried elsewhere.
	ShuffleDiskBytes int64
}

var errStopped = errors.New("grid: the grid has stopped")

// Grid is an embedded grid: a coordinator and its agents in this process.
type Grid struct {
	cfg      Config
	logger   *slog.Logger
	stateDir string
	ownState bool
	insp     *inspector // reads manifests, in a process of its own
	coord    *coordinator
	agents   []*agent

	runMu   sync.Mutex
	running bool
}

// New sets up an embedded grid. It starts nothing: Run does.
func New(cfg Config) (*Grid, error) {
	if cfg.Agents <= 0 {
		cfg.Agents = 1
	}
	if cfg.Slots <= 0 {
		cfg.Slots = runtime.NumCPU()
	}
	if cfg.Slots < cfg.Agents {
		return nil, fmt.Errorf("grid: %d slots cannot be shared by %d agents; every agent needs at least one", cfg.Slots, cfg.Agents)
	}
	if cfg.MemoryMiB <= 0 {
		cfg.MemoryMiB = machineMemoryMiB()
	}
	if _, ok := os.LookupEnv(executor.EnvConfig); ok {
		return nil, errors.New("grid: this process is an executor and cannot host a grid: its program must call executor.MainIfExecutor first")
	}
	if len(cfg.ExecutorCommand) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("grid: find this program to start executors: %w", err)
		}
		cfg.ExecutorCommand = []string{exe}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g := &Grid{cfg: cfg, logger: logger, stateDir: cfg.StateDir}
	if g.stateDir == "" {
		d, err := os.MkdirTemp("", "wasmgrid-")
		if err != nil {
			return nil, fmt.Errorf("grid: state directory: %w", err)
		}
		g.stateDir, g.ownState = d, true
	}
	cacheDir := defaultCacheDir(cfg.CacheDir)
	// The coordinator runs no guest code: manifests are read by an
	// executor of its own, which it kills if a module's initialization
	// runs too long.
	loadTimeout := cfg.ModuleLoadTimeout
	if loadTimeout <= 0 {
		loadTimeout = 10 * time.Second
	}
	g.insp = &inspector{
		argv: cfg.ExecutorCommand,
		cfg:  executor.Config{CacheDir: cacheDir, Limits: cfg.ModuleLimits, LoadTimeout: loadTimeout, Interruptible: true},
		dir:  filepath.Join(g.stateDir, "coordinator", "modules"),
		// Compiling cannot be interrupted and is not part of the load
		// timeout: it may take as long as the largest module the limits
		// admit needs. The executor stops an initialization at the load
		// timeout where it can; the backstop gives it a little longer.
		loadTimeout:    loadTimeout,
		compileTimeout: compileAllowance,
		initTimeout:    loadTimeout + loadTimeout/2,
		logger:         logger.With("role", "inspector"),
		// As many manifests read at once as a cluster's coordinator
		// reads by default; the others wait, without a bound.
		slots:     make(chan struct{}, DefaultLimits().Inspectors),
		memoryCap: uint64(cfg.InspectorMemory),
	}
	if cfg.InspectorMemory > 0 {
		g.insp.cfg.MemoryLimit = inspectorGoLimit(uint64(cfg.InspectorMemory))
	}
	statuses := make(chan taskStatus, cfg.Slots)
	// The agents' block servers speak TLS 1.3 with certificates from an
	// authority made for this grid alone.
	ca, err := certs.NewCA("wasmgrid embedded grid", 30*24*time.Hour)
	if err != nil {
		g.cleanup()
		return nil, err
	}
	peers := &peers{addrs: map[string]string{}}
	diskCap := cfg.ShuffleDiskBytes
	if diskCap <= 0 {
		diskCap = freeBytes(g.stateDir) / 10 * 8 / int64(cfg.Agents)
	}
	if g.coord, err = newCoordinator(logger, newMetrics(cfg.Metrics), statuses, g.stateDir); err != nil {
		g.cleanup()
		return nil, err
	}
	// The embedded grid runs for the user who starts it: every tenant's
	// jobs read and write that user's files.
	g.coord.grants = localGrants
	for i := range cfg.Agents {
		// Share slots and memory out as evenly as they go.
		slots := cfg.Slots / cfg.Agents
		if i < cfg.Slots%cfg.Agents {
			slots++
		}
		name := fmt.Sprintf("agent-%d", i+1)
		mem := cfg.MemoryMiB / int64(cfg.Agents)
		a := &agent{
			name:         name,
			dir:          filepath.Join(g.stateDir, name),
			resources:    allocator.Resources{CPU: int64(slots) * 1000, Mem: mem},
			peers:        peers,
			logger:       logger.With("agent", name),
			launches:     make(chan launch, slots),
			lost:         make(chan peerLoss, lostQueue),
			statuses:     statuses,
			executorArgv: cfg.ExecutorCommand,
			executorCfg:  executor.Config{CacheDir: cacheDir, MemoryLimit: mem << 20, Limits: cfg.ModuleLimits, ShuffleCA: ca.CertPEM},
			modules:      map[string]string{},
			tokens:       map[string]string{},
			diskUsed:     map[string]int64{},
			diskCap:      diskCap,
		}
		cert, err := ca.Issue(name, []string{"127.0.0.1", "::1", "localhost"}, 30*24*time.Hour)
		if err != nil {
			g.cleanup()
			return nil, err
		}
		a.blocks, err = quicnet.NewServer(quicnet.ServerConfig{
			Addr:      "127.0.0.1:0",
			TLS:       certs.ServerConfig(cert, executor.ShuffleALPN),
			Dir:       filepath.Join(a.dir, "jobs"),
			Authorize: a.authorize,
			Logger:    a.logger,
		})
		if err != nil {
			g.cleanup()
			return nil, fmt.Errorf("grid: %s's block server: %w", name, err)
		}
		peers.addrs[name] = a.blocks.Addr().String()
		g.agents = append(g.agents, a)
		g.coord.addAgent(a)
	}
	return g, nil
}

// compileAllowance bounds how long compiling a module may take before the
// inspector gives up on it.
const compileAllowance = 2 * time.Minute

// Slots is the number of tasks the grid runs at once.
func (g *Grid) Slots() int { return g.cfg.Slots }

// StateDir is where the grid keeps its files.
func (g *Grid) StateDir() string { return g.stateDir }

// Run runs the coordinator and the agents until ctx ends, then waits for
// every task to stop and releases everything New set up. A Grid runs once.
func (g *Grid) Run(ctx context.Context) error {
	g.runMu.Lock()
	if g.running {
		g.runMu.Unlock()
		return errors.New("grid: Run called twice")
	}
	g.running = true
	g.runMu.Unlock()

	var wg sync.WaitGroup
	for _, a := range g.agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.run(ctx)
		}()
	}
	g.coord.run(ctx)
	wg.Wait()
	g.cleanup()
	return nil
}

func (g *Grid) cleanup() {

	if g.ownState {
		os.RemoveAll(g.stateDir)
	}
}

// Submit validates a job against its modules and inputs, plans it, and
// hands it to the coordinator. Nothing runs if it returns an error.
func (g *Grid) Submit(ctx context.Context, req JobRequest) (*Job, error) {
	if req.Spec == nil {
		return nil, errors.New("grid: job request without a spec")
	}
	select {
	case <-g.coord.stopped:
		return nil, errStopped
	default:
	}
	var agents []allocator.Resources
	for _, a := range g.agents {
		agents = append(agents, a.resources)
	}
	// The spec limits of a cluster's defaults: a job of a million
	// partitions is a mistake on a laptop too.
	adm := admission{Spec: req.Spec, Tenant: req.Tenant, Modules: map[string]moduleBlob{}, limits: specLimits(DefaultLimits())}
	for name, b := range req.Modules {
		blob, err := storeBytes(g.insp.dir, name, b)
		if err != nil {
			return nil, fmt.Errorf("grid: %w", err)
		}
		adm.Modules[name] = blob
	}
	return admit(ctx, g.coord, g.insp, adm, g.cfg.Slots, agents)
}

// admit validates a job against its modules, inputs and the agents'
// sizes, plans it and hands it to the coordinator.
func admit(ctx context.Context, coord *coordinator, insp *inspector, req admission, slots int, agents []allocator.Resources) (*Job, error) {
	if req.Grants == nil {
		g := coord.grants(req.tenant())
		req.Grants = &g
	}
	job, blobs, volumes, err := prepare(ctx, insp, req, slots, coord.stores)
	if err != nil {
		return nil, err
	}
	taskRes := taskResources(req.Spec.Conf)
	fits := false
	var largest allocator.Resources
	for _, a := range agents {
		fits = fits || a.Contains(taskRes)
		if a.Mem > largest.Mem {
			largest = a
		}
	}
	if !fits {
		if len(agents) == 0 {
			return nil, fmt.Errorf("%s: the grid has no agents yet: start one (grid agent --join) and submit again", req.Spec.Display())
		}
		return nil, fmt.Errorf("%s: a task needs %d MiB (task.memory) but the largest agent has %d MiB: lower task.memory", req.Spec.Display(), taskRes.Mem, largest.Mem)
	}
	return coord.submit(ctx, req, job, blobs, volumes, taskRes)
}

// taskResources is what the allocator reserves for each task of a job:
// one CPU and its task.memory.
func taskResources(c jobspec.Conf) allocator.Resources {
	return allocator.Resources{CPU: 1000, Mem: int64(c.TaskMemory) >> 20}
}

// taskReservation is taskResources as an agent's executors count it: the
// memory an executor may hold for the task is its task.memory.
func taskReservation(c jobspec.Conf) executor.Reservation {
	return executor.Reservation{Memory: int64(c.TaskMemory), CPUMillis: taskResources(c).CPU}
}

// freeBytes is the space available to unprivileged users under dir, or 0
// (no cap) if the file system does not say.
func freeBytes(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// machineMemoryMiB reads MemTotal from /proc/meminfo, or guesses 8 GiB.
func machineMemoryMiB() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 8 << 10
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil && kb > 0 {
				return kb >> 10
			}
		}
	}
	return 8 << 10
}

package grid

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/wasmgrid/wasmgrid/allocator"
	"github.com/wasmgrid/wasmgrid/internal/executor"
	"github.com/wasmgrid/wasmgrid/internal/gossip"
	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/internal/wire"
	"github.com/wasmgrid/wasmgrid/shuffle/quicnet"
)

// Agent is the `grid agent` process: it joins the cluster's gossip,
// registers with the coordinator over the control plane, runs the tasks
// it is sent in executors and serves its shuffle blocks.
type Agent struct {
	cfg       AgentConfig
	logger    *slog.Logger
	a         *agent
	gossip    *gossip.Agent
	clientTLS *tls.Config // control plane
	statuses  chan taskStatus

	mu       sync.Mutex // protects jobs, attempts, seq and unacked
	jobs     map[string]context.CancelCauseFunc
	jobCtx   map[string]context.Context
	attempts map[wire.Attempt]context.CancelCauseFunc
	// seq numbers statuses; unacked holds those sent and not yet
	// acknowledged, in order: they are sent again after a reconnection.
	seq     uint64
	unacked []*wire.Status
}

// NewAgent sets an agent up: its block server and gossip are bound, so
// their addresses are known; Run joins and serves.
func NewAgent(cfg AgentConfig, logger *slog.Logger) (*Agent, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("agent", cfg.Name)
	id, err := loadNode(cfg.TLS, cfg.Name)
	if err != nil {
		return nil, err
	}
	_, clientTLS, err := id.mutual(quicnet.ControlALPN)
	if err != nil {
		return nil, err
	}
	blockTLS, _, err := id.mutual(executor.ShuffleALPN)
	if err != nil {
		return nil, err
	}
	key, err := gossip.LoadKeyring(cfg.GossipKey)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("grid: find this program to start executors: %w", err)
	}
	cpus := cfg.CPUs
	if cpus <= 0 {
		cpus = float64(runtime.NumCPU())
	}
	mem := int64(cfg.Memory) >> 20
	if mem <= 0 {
		mem = machineMemoryMiB() / 2
	}
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("grid: agent state directory: %w", err)
	}
	disk := int64(cfg.Disk)
	if disk <= 0 {
		disk = freeBytes(cfg.StateDir) / 10 * 8
	}
	n := &Agent{
		cfg:       cfg,
		logger:    logger,
		clientTLS: clientTLS,
		statuses:  make(chan taskStatus, 1024),
		jobs:      map[string]context.CancelCauseFunc{},
		jobCtx:    map[string]context.Context{},
		attempts:  map[wire.Attempt]context.CancelCauseFunc{},
	}
	slots := max(int(cpus), 1)
	n.a, err = newAgent(agentParts{
		name:         cfg.Name,
		dir:          cfg.StateDir,
		resources:    allocator.Resources{CPU: int64(cpus * 1000), Mem: mem, Disk: disk >> 20},
		queue:        slots * 4,
		peers:        &peers{addrs: map[string]string{}},
		statuses:     n.statuses,
		logger:       logger,
		executorArgv: []string{exe},
		executorCfg: executor.Config{
			CacheDir: defaultCacheDir(cfg.CacheDir), MemoryLimit: mem << 20,
			ShuffleCA: id.caPEM, ShuffleCert: id.certPEM, ShuffleKey: id.keyPEM,
		},
		// The executors' memory beyond their tasks' task.memory.
		executorOverhead: int64(cfg.ExecutorOverhead),
		diskCap:          disk,
		blockAddr:        cfg.BlockAddr,
		blockTLS:         blockTLS,
	})
	if err != nil {
		return nil, err
	}
	n.gossip, err = gossip.Start(cfg.Name, cfg.GossipAddr, key, map[string]string{
		gossip.TagRole:    "agent",
		gossip.TagBlocks:  n.a.blocks.Addr().String(),
		gossip.TagCPU:     strconv.FormatInt(n.a.resources.CPU, 10),
		gossip.TagMem:     strconv.FormatInt(n.a.resources.Mem, 10),
		gossip.TagDisk:    strconv.FormatInt(n.a.resources.Disk, 10),
		gossip.TagVersion: Version,
	}, logger)
	if err != nil {
		_ = n.a.blocks.Run(canceled())
		return nil, err
	}
	return n, nil
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// BlockAddr and GossipAddr are where the agent listens.
func (n *Agent) BlockAddr() string  { return n.a.blocks.Addr().String() }
func (n *Agent) GossipAddr() string { return n.gossip.Addr() }

// Run joins the cluster and serves until ctx ends; it reconnects to the
// coordinator when the control connection breaks.
func (n *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		n.gossip.Close()
	}()
	wg.Go(func() { n.a.run(ctx) })
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if _, err := n.gossip.Join(n.cfg.Join); err != nil {
			n.logger.Warn("joining the cluster", "join", n.cfg.Join, "err", err)
			sleep(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		addr := n.coordinatorAddr()
		if addr == "" {
			n.logger.Warn("no coordinator in gossip yet", "join", n.cfg.Join)
			sleep(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		err := n.serve(ctx, addr)
		if ctx.Err() != nil {
			break
		}
		n.logger.Warn("control connection ended; reconnecting", "coordinator", addr, "err", err)
		sleep(ctx, backoff)
		// A coordinator that restarts or fails over is back within a
		// second or two: the agent keeps asking at least every second.
		backoff = min(backoff*2, time.Second)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// coordinatorAddr is the control address the coordinator advertises in
// gossip.
func (n *Agent) coordinatorAddr() string {
	addr, term := "", uint64(0)
	for _, m := range n.gossip.Members() {
		if m.Tags[gossip.TagRole] != "coordinator" || m.Status.String() != "alive" {
			continue
		}
		// With several coordinator servers, the leader of the highest
		// term (a dead leader's tag lingers until gossip finds it
		// dead); a follower refuses the registration, and the agent asks
		// gossip again.
		if t, _ := strconv.ParseUint(m.Tags[gossip.TagLeader], 10, 64); t > term || addr == "" {
			addr, term = m.Tags[gossip.TagControl], t
		}
	}
	return addr
}

// serve registers with the coordinator at addr and carries the control
// stream until it breaks.
func (n *Agent) serve(ctx context.Context, addr string) error {
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := quicnet.DialControl(dctx, addr, n.clientTLS, controlIdle)
	dcancel()
	if err != nil {
		return err
	}
	defer conn.Close("agent stopping")
	// Reads do not watch ctx: closing the connection ends them.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close("agent stopping") })
	defer stop()
	st, err := conn.OpenStream(ctx)
	if err != nil {
		return err
	}
	reg := wire.Register{
		Agent:     n.cfg.Name,
		Version:   Version,
		Resources: wire.Resources{CPU: n.a.resources.CPU, Mem: n.a.resources.Mem, Disk: n.a.resources.Disk},
		BlockAddr: n.BlockAddr(),
		Running:   n.reported(),
	}
	_ = st.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wire.Write(st, wire.TypeRegister, &reg); err != nil {
		return err
	}
	var ack wire.Registered
	if err := wire.Expect(st, wire.TypeRegistered, &ack); err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	_ = st.SetDeadline(time.Time{})
	for _, at := range ack.Kill {
		n.kill(at, errors.New("the coordinator no longer tracks this attempt"))
	}
	n.logger.Info("registered", "coordinator", addr, "epoch", ack.Epoch)

	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	// A coordinator that dies says nothing: the agent would wait for the
	// connection's idle timeout. Gossip says sooner that another server
	// leads (or that this one is gone): the agent goes to it.
	wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
				if cur := n.coordinatorAddr(); cur != "" && cur != addr {
					n.logger.Warn("another coordinator server leads: registering with it", "was", addr, "now", cur)
					_ = conn.Close("another coordinator server leads")
					return
				}
			}
		}
	})
	// One writer: statuses and heartbeats. Statuses that the last
	// connection did not see acknowledged go first, to this coordinator.
	wg.Go(func() {
		defer scancel()
		for _, m := range n.resend(ack.Epoch) {
			if err := wire.Write(st, wire.TypeStatus, m); err != nil {
				return
			}
		}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
				if err := wire.Write(st, wire.TypeHeartbeat, &wire.Heartbeat{}); err != nil {
					return
				}
			case s := <-n.statuses:
				if err := wire.Write(st, wire.TypeStatus, n.statusMsg(ack.Epoch, s)); err != nil {
					// Sent again after the next registration.
					return
				}
			}
		}
	})
	defer scancel()
	for {
		env, err := wire.Read(st)
		if err != nil {
			return err
		}
		switch env.Type {
		case wire.TypeLaunch:
			var l wire.Launch
			if err := env.Decode(&l); err != nil {
				return err
			}
			wg.Go(func() { n.launch(sctx, conn, l) })
		case wire.TypeKill:
			var k wire.Kill
			if err := env.Decode(&k); err != nil {
				return err
			}
			n.kill(k.Attempt, errors.New("killed by the coordinator"))
		case wire.TypeRemoveJob:
			var r wire.RemoveJob
			if err := env.Decode(&r); err != nil {
				return err
			}
			n.removeJob(r.Job)
		case wire.TypeAck:
			var a wire.Ack
			if err := env.Decode(&a); err != nil {
				return err
			}
			n.acked(a.Seq)
		case wire.TypePeerLost:
			var p wire.PeerLost
			if err := env.Decode(&p); err != nil {
				return err
			}
			n.a.peerLost(p.Agent, p.BlockAddr)
		default:
			return fmt.Errorf("unexpected %s message from the coordinator", env.Type)
		}
	}
}

// statusMsg numbers a status and keeps it until it is acknowledged.
func (n *Agent) statusMsg(epoch uint64, s taskStatus) *wire.Status {
	m := n.encodeStatus(epoch, s)
	n.mu.Lock()
	delete(n.attempts, m.Attempt)
	n.seq++
	m.Seq = n.seq
	n.unacked = append(n.unacked, m)
	n.mu.Unlock()
	return m
}

// acked forgets the statuses through seq: the coordinator committed them.
func (n *Agent) acked(seq uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	i := 0
	for i < len(n.unacked) && n.unacked[i].Seq <= seq {
		n.unacked[i] = nil
		i++
	}
	n.unacked = n.unacked[i:]
}

// resend returns the statuses not acknowledged, stamped with a new
// coordinator's epoch.
func (n *Agent) resend(epoch uint64) []*wire.Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*wire.Status, len(n.unacked))
	for i, m := range n.unacked {
		m.Epoch = epoch
		c := *m
		out[i] = &c
	}
	if len(out) > 0 {
		n.logger.Info("statuses sent again to a new coordinator", "statuses", len(out))
	}
	return out
}

// reported lists the attempts the coordinator must not call lost at a
// registration: those that run, and those whose end it has not
// acknowledged (their statuses follow the registration).
func (n *Agent) reported() []wire.Attempt {
	out := n.running()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.unacked {
		out = append(out, m.Attempt)
	}
	return out
}

func (n *Agent) encodeStatus(epoch uint64, s taskStatus) *wire.Status {
	m := &wire.Status{Epoch: epoch, Attempt: wire.Attempt{Job: s.job, Task: s.key, Attempt: s.attempt}, ElapsedNS: int64(s.elapsed)}
	if s.err != nil {
		f := executor.FailureOf(s.err)
		m.Failure, m.Err = &f, s.err.Error()
		var e *executor.Error
		if errors.As(s.err, &e) {
			m.Log = e.Log
		}
		return m
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(s.res); err != nil {
		f := executor.FailureOf(err)
		m.Failure, m.Err = &f, err.Error()
		return m
	}
	m.Result = buf.Bytes()
	return m
}

// launch fetches what the attempt's modules lack and queues it.
func (n *Agent) launch(ctx context.Context, conn *quicnet.ControlConn, l wire.Launch) {
	at := wire.Attempt{Job: l.Job, Task: l.Spec.Key, Attempt: l.Spec.Attempt}
	var blobs []moduleBlob
	for _, m := range l.Modules {
		if err := n.fetchModule(ctx, conn, m); err != nil {
			n.statuses <- taskStatus{job: l.Job, agent: n.cfg.Name, key: l.Spec.Key, attempt: l.Spec.Attempt,
				err: fmt.Errorf("task %s attempt %d: fetch module %s: %w", l.Spec.Key, l.Spec.Attempt, m.Name, err)}
			return
		}
		blobs = append(blobs, moduleBlob{Name: m.Name, Hash: m.Hash})
	}
	n.mu.Lock()
	jctx, ok := n.jobCtx[l.Job]
	if !ok {
		var cancel context.CancelCauseFunc
		jctx, cancel = context.WithCancelCause(context.Background())
		n.jobCtx[l.Job], n.jobs[l.Job] = jctx, cancel
	}
	actx, acancel := context.WithCancelCause(jctx)
	n.attempts[at] = acancel
	n.mu.Unlock()
	vols := map[string]storage.Volume{}
	for _, v := range l.Volumes {
		vols[v.Name] = v
	}
	x := launch{ctx: actx, job: l.Job, tenant: l.Tenant, token: l.Token, spec: l.Spec, modules: blobs, conf: l.Conf, outputFile: l.OutputFile, outputVolume: l.OutputVolume, outputFormat: l.OutputFormat, inlineOutput: l.InlineOutput, blockServers: l.BlockServers, volumes: vols}
	select {
	case n.a.launches <- x:
	case <-ctx.Done():
		acancel(ctx.Err())
	}
}

// fetchModule makes sure the agent has module m, fetching it from the
// coordinator and checking its hash if not.
func (n *Agent) fetchModule(ctx context.Context, conn *quicnet.ControlConn, m wire.ModuleRef) error {
	n.a.mu.Lock()
	_, ok := n.a.modules[m.Hash]
	n.a.mu.Unlock()
	if ok {
		return nil
	}
	path := filepath.Join(n.a.dir, "modules", m.Hash+".wasm")
	if h, err := hashFile(path); err == nil && h == m.Hash {
		n.a.mu.Lock()
		n.a.modules[m.Hash] = path
		n.a.mu.Unlock()
		return nil
	}
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	st, err := conn.OpenStream(fctx)
	if err != nil {
		return err
	}
	defer st.CancelRead()
	_ = st.SetDeadline(time.Now().Add(2 * time.Minute))
	if err := wire.Write(st, wire.TypeFetchModule, &wire.FetchModule{Hash: m.Hash}); err != nil {
		return err
	}
	st.Close()
	var hdr wire.Module
	if err := wire.Expect(st, wire.TypeModule, &hdr); err != nil {
		return err
	}
	if hdr.Size < 0 || hdr.Size > maxModuleFetch {
		return fmt.Errorf("module of %d bytes", hdr.Size)
	}
	// Streamed to disk as it is hashed: the agent never holds a module.
	dir := filepath.Join(n.a.dir, "modules")
	got, size, err := writeModuleFrom(dir, io.LimitReader(st, hdr.Size), hdr.Size)
	if err != nil {
		return err
	}
	if size != hdr.Size {
		return fmt.Errorf("module %s: %d bytes of %d arrived", m.Hash, size, hdr.Size)
	}
	if got != m.Hash {
		return fmt.Errorf("module bytes hash to %s, not %s", got, m.Hash)
	}
	p := filepath.Join(dir, m.Hash+".wasm")
	n.a.mu.Lock()
	n.a.modules[m.Hash] = p
	n.a.mu.Unlock()
	return nil
}

// running lists the attempts in flight, for reconciliation.
func (n *Agent) running() []wire.Attempt {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]wire.Attempt, 0, len(n.attempts))
	for at := range n.attempts {
		out = append(out, at)
	}
	return out
}

func (n *Agent) kill(at wire.Attempt, cause error) {
	n.mu.Lock()
	cancel := n.attempts[at]
	n.mu.Unlock()
	if cancel != nil {
		cancel(cause)
	}
}

func (n *Agent) removeJob(job string) {
	n.mu.Lock()
	cancel := n.jobs[job]
	delete(n.jobs, job)
	delete(n.jobCtx, job)
	n.mu.Unlock()
	if cancel != nil {
		cancel(errors.New("the job ended"))
	}
	if err := n.a.removeJob(job); err != nil {
		n.logger.Warn("remove job files", "job", job, "err", err)
	}
}

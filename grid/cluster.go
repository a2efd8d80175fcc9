package grid

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/wasmgrid/wasmgrid/allocator"
	"github.com/wasmgrid/wasmgrid/core"
	"github.com/wasmgrid/wasmgrid/internal/apilimit"
	"github.com/wasmgrid/wasmgrid/internal/audit"
	"github.com/wasmgrid/wasmgrid/internal/certs"
	"github.com/wasmgrid/wasmgrid/internal/executor"
	"github.com/wasmgrid/wasmgrid/internal/gossip"
	"github.com/wasmgrid/wasmgrid/internal/raftlog"
	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/internal/tokens"
	"github.com/wasmgrid/wasmgrid/internal/wire"
	"github.com/wasmgrid/wasmgrid/shuffle/quicnet"
	"github.com/wasmgrid/wasmgrid/wasmexec"
)

// Version is the release this build is; agents advertise it in gossip
// and in Register.
var Version = "dev"

// Coordinator is the `grid coordinator` process: the API, the planner's
// job schedulers, the allocator and the task tracker, with agents that
// join over serf and the QUIC control plane.
type Coordinator struct {
	cfg     CoordinatorConfig
	logger  *slog.Logger
	coord   *coordinator
	insp    *inspector
	gossip  *gossip.Agent
	control *quicnet.ControlListener
	api     net.Listener
	apiTLS  *tls.Config // nil: plain HTTP (insecure_http, loopback only)
	epoch   uint64
	auth    *authz
	modules *moduleStore
	// sync moves modules between the coordinator servers.
	sync   *moduleSync
	limits *apilimit.Limits
	audit  *audit.Log
	lim    LimitsConfig // the config's limits, defaults filled in
	// agentTLS is the control plane's server side.
	modulesDir string

	// raft is the replicated log of the job state; raftNet its transport.
	raft    *raftlog.Node
	raftNet *raftlog.QUICTransport

	mu     sync.Mutex             // protects links, graces and added
	links  map[string]*remoteLink // the current control connection of each agent
	graces map[string]*time.Timer // agents that are gone and may come back
	// added are the servers added through this one since it started, by
	// id: their API addresses, which the config does not know.
	added  map[uint64]ServerConfig
	events *eventLog
}

// NewCoordinator binds the coordinator's listeners (API, control plane,
// gossip) so that their addresses are known; Run serves them.
func NewCoordinator(cfg CoordinatorConfig, logger *slog.Logger, reg prometheus.Registerer) (*Coordinator, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	id, err := loadNode(cfg.TLS, cfg.Name)
	if err != nil {
		return nil, err
	}
	serverTLS, clientTLS, err := id.mutual(quicnet.ControlALPN)
	if err != nil {
		return nil, err
	}
	var apiTLSConfig *tls.Config
	if !cfg.InsecureHTTP {
		if apiTLSConfig, err = apiTLS(id, cfg.TLS.Cert, cfg.APIAddr); err != nil {
			return nil, err
		}
	}
	key, err := gossip.LoadKeyring(cfg.GossipKey)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("grid: find this program to start executors: %w", err)
	}
	cacheDir := defaultCacheDir(cfg.CacheDir)
	// The tokens are replicated state: the log (openLog's replay, then
	// every committed command) fills the store; nothing is read from or
	// written to the state dir before openLog has checked it.
	store := tokens.NewStore(bootstrapTokens(cfg), time.Now)
	c := &Coordinator{
		cfg:        cfg,
		logger:     logger,
		apiTLS:     apiTLSConfig,
		epoch:      uint64(time.Now().UnixNano()),
		lim:        cfg.Limits.withDefaults(),
		links:      map[string]*remoteLink{},
		graces:     map[string]*time.Timer{},
		added:      map[uint64]ServerConfig{},
		modulesDir: filepath.Join(cfg.StateDir, "coordinator", "modules"),
		events:     newEventLog(),
		auth:       newAuthz(store),
	}
	c.limits = newAPILimits(c.lim, time.Now)
	c.audit = newAuditLog(cfg.Audit.withDefaults(cfg.StateDir), time.Now)
	c.modules = newModuleStore(c.modulesDir, c.lim)
	c.insp = newInspector([]string{exe}, cacheDir, c.modulesDir, wasmexec.ModuleLimits{}, 10*time.Second, uint64(c.lim.InspectorMemory), c.lim.Inspectors, c.lim.InspectorQueue, logger)
	if c.coord, err = newCoordinator(logger, newMetrics(reg), make(chan taskStatus, 1024), cfg.StateDir); err != nil {
		return nil, err
	}
	for _, v := range cfg.Volumes {
		if v.Name == cfg.ResultsVolume {
			c.coord.results = v
		}
	}
	// The tokens and the modules' records are replicated state: the log
	// (openLog's replay, then every committed command) fills them.
	c.sync = newModuleSync(c.modulesDir, cfg.Name, cfg.Servers, clientTLS, int64(c.lim.ModuleSize))
	c.sync.logger = logger.With("role", "modules")
	c.sync.addrOf = c.controlAddrOf
	c.sync.stillWanted = func(hash string) bool { return c.modules.named(hash) || c.moduleInUse(hash) }
	c.coord.tokens, c.coord.modules, c.coord.missing = store, c.modules, c.sync.want
	grants, err := grantsFor(cfg.Volumes, cfg.Tenants)
	if err != nil {
		return nil, err
	}
	// A tenant gets the volumes the operator granted it, and nothing else.
	c.coord.grants = func(tenant string) storage.Grants {
		if g, ok := grants[tenant]; ok {
			return g
		}
		return storage.Grants{Tenant: tenant}
	}
	for _, w := range exposed(cfg.Volumes, cfg.StateDir, cfg.TLS.Key, cfg.GossipKey) {
		logger.Warn("a volume holds the coordinator's own files: tenants granted it can read them", "volume", w)
	}
	coreCfg := core.Config{History: core.History{MaxJobs: cfg.History.MaxJobs, MaxAge: time.Duration(cfg.History.MaxAge)}}
	for _, t := range cfg.Tenants {
		coreCfg.Tenants = append(coreCfg.Tenants, core.Tenant{Name: t.Name, Tenant: allocator.Tenant{Weight: t.Weight, Guarantee: t.Guarantee.resources(), Limit: t.Limit.resources()}})
	}
	if err := c.coord.configure(coreCfg); err != nil {
		return nil, fmt.Errorf("grid: tenants: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			c.close()
		}
	}()
	if c.control, err = quicnet.ListenControl(cfg.ControlAddr, serverTLS, controlIdle); err != nil {
		return nil, err
	}
	if c.api, err = net.Listen("tcp", cfg.APIAddr); err != nil {
		return nil, fmt.Errorf("grid: API listener: %w", err)
	}
	if err := c.openLog(id); err != nil {
		return nil, err
	}
	c.gossip, err = gossip.Start(cfg.Name, cfg.GossipAddr, key, map[string]string{
		gossip.TagRole:    "coordinator",
		gossip.TagControl: c.control.Addr().String(),
		gossip.TagAPI:     c.api.Addr().String(),
		gossip.TagVersion: Version,
	}, logger)
	if err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// controlIdle is how long a silent control connection lives: the peers
// send keep-alives well within it.
const controlIdle = 10 * time.Second

func (c *Coordinator) close() {
	if c.raft != nil {
		_ = c.raft.Close() // a node whose Run never ran; else a no-op
	}
	if c.raftNet != nil {
		c.raftNet.Close()
	}
	if c.gossip != nil {
		c.gossip.Close()
	}
	if c.control != nil {
		c.control.Close()
	}
	if c.api != nil {
		c.api.Close()
	}
	if c.audit != nil {
		c.audit.Close()
	}
}

// APIAddr, ControlAddr and GossipAddr are where the coordinator listens.
func (c *Coordinator) APIAddr() string     { return c.api.Addr().String() }
func (c *Coordinator) ControlAddr() string { return c.control.Addr().String() }
func (c *Coordinator) GossipAddr() string  { return c.gossip.Addr() }

// APIURL is the API's base URL: https://, or http:// for a coordinator
// serving plain HTTP on loopback (insecure_http).
func (c *Coordinator) APIURL() string {
	if c.apiTLS == nil {
		return "http://" + c.APIAddr()
	}
	return "https://" + c.APIAddr()
}

// Run serves until ctx ends, then stops everything it started.
func (c *Coordinator) Run(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	logErr := make(chan error, 1)
	defer func() {
		cancel()
		wg.Wait()
		c.close()
		select {
		case err = <-logErr:
		default:
		}
	}()
	wg.Go(func() { c.coord.run(ctx) })
	wg.Go(func() { c.sync.run(ctx) })
	// A log that stops on its own (a state dir that cannot be written, a
	// committed entry that does not decode) stops the server: serving on
	// without it would answer from a state that no longer moves.
	wg.Go(func() {
		if err := c.raft.Run(ctx); err != nil && ctx.Err() == nil {
			c.logger.Error("the replicated log stopped", "err", err)
			logErr <- fmt.Errorf("grid: the replicated log in %s stopped: %w", filepath.Join(c.cfg.StateDir, "raft"), err)
			cancel()
		}
	})
	wg.Go(func() { c.joinServers(ctx) })
	led := make(chan struct{})
	wg.Go(func() { c.followLeadership(ctx, led) })
	// A server alone serves agents and clients once it leads (in a few
	// hundred milliseconds): the state it restored is then the cluster's.
	// One of several serves at once: as a follower, it sends agents and
	// clients to the leader.
	if len(c.cfg.Servers) <= 1 {
		select {
		case <-led:
		case <-ctx.Done():
			return nil
		}
	}
	wg.Go(func() { c.acceptAgents(ctx) })
	wg.Go(func() { c.watchGossip(ctx) })
	srv := &http.Server{
		Handler:           c.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		// Only the API's own errors (handshakes, bad requests) are logged.
		ErrorLog: slog.NewLogLogger(c.logger.Handler(), slog.LevelDebug),
	}
	wg.Go(func() {
		<-ctx.Done()
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	})
	c.logger.Info("coordinator serving", "api", c.APIURL(), "control", c.ControlAddr(), "gossip", c.GossipAddr())
	if c.apiTLS != nil {
		// ServeTLS answers a plain HTTP request with 400 ("client sent an
		// HTTP request to an HTTPS server") before any handler runs.
		srv.TLSConfig = c.apiTLS
		err = srv.ServeTLS(c.api, "", "")
	} else {
		c.logger.Warn("the API serves plain HTTP (insecure_http): tokens cross loopback in clear", "api", c.APIURL())
		err = srv.Serve(c.api)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("grid: API: %w", err)
	}
	<-ctx.Done()
	c.mu.Lock()
	for _, t := range c.graces {
		t.Stop()
	}
	c.mu.Unlock()
	return nil
}

// acceptAgents serves agents' control connections.
func (c *Coordinator) acceptAgents(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := c.control.Accept(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.logger.Error("control accept", "err", err)
			}
			return
		}
		wg.Go(func() { c.serveAgent(ctx, conn) })
	}
}

// serveAgent registers an agent and carries its control stream until the
// connection ends.
func (c *Coordinator) serveAgent(ctx context.Context, conn *quicnet.ControlConn) {
	defer conn.Close("bye")
	// Reads do not watch ctx: closing the connection ends them.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close("coordinator stopping") })
	defer stop()
	peer := certs.PeerName(conn.TLS())
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	st, err := conn.AcceptStream(sctx)
	cancel()
	if err != nil {
		return
	}
	_ = st.SetDeadline(time.Now().Add(10 * time.Second))
	env, err := wire.Read(st)
	if err == nil && c.sync.isPeer(peer) && env.Type != wire.TypeRegister {
		// Another coordinator server: a module transfer (modsync.go).
		c.servePeer(ctx, conn, st, env)
		return
	}
	var reg wire.Register
	if err == nil && env.Type != wire.TypeRegister {
		err = fmt.Errorf("got a %s message, want %s", env.Type, wire.TypeRegister)
	}
	if err == nil {
		err = env.Decode(&reg)
	}
	if err != nil {
		c.logger.Warn("agent registration", "peer", peer, "addr", conn.RemoteAddr(), "err", err)
		return
	}
	if reg.Agent != peer {
		msg := fmt.Sprintf("agent registers as %q but its certificate names %q: an agent's name must be its certificate's common name", reg.Agent, peer)
		_ = wire.Write(st, wire.TypeError, &wire.Error{Msg: msg})
		c.logger.Warn("agent refused", "reason", msg)
		return
	}
	if !c.leads() {
		msg := "this coordinator server is a follower: register with the leader" + c.leaderHint()
		_ = wire.Write(st, wire.TypeError, &wire.Error{Msg: msg})
		return
	}
	if reg.Version != Version {
		c.logger.Warn("agent runs another release", "agent", reg.Agent, "agent_version", reg.Version, "version", Version)
	}
	link := &remoteLink{name: reg.Agent, epoch: c.epoch, out: make(chan frame, 4096), done: make(chan struct{}), conn: conn}
	c.mu.Lock()
	old := c.links[reg.Agent]
	c.links[reg.Agent] = link
	if t := c.graces[reg.Agent]; t != nil {
		t.Stop()
		delete(c.graces, reg.Agent)
	}
	c.mu.Unlock()
	if old != nil {
		old.close()
	}
	// The agent keeps the attempts it runs: the core adopts those it
	// placed there and sends kills for the others (reconciliation).
	if err := wire.Write(st, wire.TypeRegistered, &wire.Registered{Epoch: c.epoch}); err != nil {
		return
	}
	_ = st.SetDeadline(time.Time{})
	ref := &agentRef{
		name:      reg.Agent,
		resources: allocator.Resources{CPU: reg.Resources.CPU, Mem: reg.Resources.Mem, Disk: reg.Resources.Disk},
		blockAddr: reg.BlockAddr,
		link:      link,
	}
	for _, at := range reg.Running {
		ref.running = append(ref.running, core.Attempt{Job: at.Job, Task: at.Task, Attempt: at.Attempt})
	}
	c.coord.join(ref)
	c.events.add("agent_joined", reg.Agent, "")

	var wg sync.WaitGroup
	defer wg.Wait()
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	wg.Go(func() { link.write(lctx, st) })
	wg.Go(func() { c.serveModules(lctx, conn) })
	err = c.readStatuses(lctx, reg.Agent, st, link)
	lcancel()
	close(link.done)
	if ctx.Err() != nil {
		return
	}
	c.logger.Warn("agent control connection ended", "agent", reg.Agent, "err", err)
	c.startGrace(ctx, reg.Agent, link)
}

// readStatuses forwards an agent's reports to the coordinator's loop.
// Each status is acknowledged once it is committed; one that is not (this
// server stopped leading) is sent again to the next leader. The reports
// that arrived while the previous ones were being committed are committed
// together, as one entry of the log.
func (c *Coordinator) readStatuses(ctx context.Context, agent string, st quicnet.Stream, link *remoteLink) error {
	in := make(chan wire.Status, statusBatch)
	readErr := make(chan error, 1)
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	defer st.CancelRead() // unblocks the reader when a commit failed
	wg.Go(func() {
		defer close(in)
		readErr <- readStatusFrames(rctx, st, in)
	})
	for {
		var s wire.Status
		var ok bool
		select {
		case s, ok = <-in:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return <-readErr
		}
		batch, _ := drain(s, in, statusBatch)
		var tss []taskStatus
		var seq uint64
		for _, s := range batch {
			seq = max(seq, s.Seq)
			if s.Epoch != c.epoch {
				c.logger.Warn("status of another epoch refused", "agent", agent, "epoch", s.Epoch)
				continue
			}
			tss = append(tss, c.taskStatusOf(agent, s))
		}
		if len(tss) > 0 {
			if err := c.coord.applyStatuses(tss); err != nil {
				return fmt.Errorf("%d statuses (the first of %s) were not committed: %w", len(tss), tss[0].job, err)
			}
		}
		link.ack(seq)
	}
}

// statusBatch bounds the statuses of one agent committed as one entry.
const statusBatch = 256

// readStatusFrames reads an agent's control stream, passing its statuses
// to out, until the stream or ctx ends.
func readStatusFrames(ctx context.Context, st quicnet.Stream, out chan<- wire.Status) error {
	for {
		env, err := wire.Read(st)
		if err != nil {
			return err
		}
		switch env.Type {
		case wire.TypeStatus:
			var s wire.Status
			if err := env.Decode(&s); err != nil {
				return err
			}
			select {
			case out <- s:
			case <-ctx.Done():
				return ctx.Err()
			}
		case wire.TypeHeartbeat:
		default:
			return fmt.Errorf("unexpected %s message on the control stream", env.Type)
		}
	}
}

// taskStatusOf is an agent's report as the coordinator's loop takes it.
func (c *Coordinator) taskStatusOf(agent string, s wire.Status) taskStatus {
	ts := taskStatus{job: s.Attempt.Job, agent: agent, key: s.Attempt.Task, attempt: s.Attempt.Attempt, elapsed: time.Duration(s.ElapsedNS)}
	if s.Failure != nil {
		ts.err = &executor.Error{Failure: *s.Failure, Err: errors.New(s.Err), Log: s.Log}
		return ts
	}
	var res executor.Result
	if err := gob.NewDecoder(bytes.NewReader(s.Result)).Decode(&res); err != nil {
		ts.err = fmt.Errorf("agent %s sent an unreadable result: %w", agent, err)
	} else {
		ts.res = &res
	}
	return ts
}

// startGrace declares agent lost after the grace period, unless it has
// registered again by then.
func (c *Coordinator) startGrace(ctx context.Context, agent string, link *remoteLink) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if link != nil && c.links[agent] != link {
		return // already replaced
	}
	if c.graces[agent] != nil {
		return
	}
	grace := time.Duration(c.cfg.AgentGrace)
	go c.coord.suspect(agent)
	c.graces[agent] = time.AfterFunc(grace, func() {
		c.mu.Lock()
		if c.graces[agent] == nil {
			c.mu.Unlock()
			return
		}
		delete(c.graces, agent)
		cur := c.links[agent]
		if link == nil || cur == link {
			delete(c.links, agent)
		}
		c.mu.Unlock()
		if cur != nil {
			cur.close()
		}
		if ctx.Err() == nil {
			c.coord.lose(agent)
			c.events.add("agent_lost", agent, fmt.Sprintf("gone for %s", grace))
		}
	})
}

// watchGossip starts the grace period of agents that leave or fail in
// serf membership.
func (c *Coordinator) watchGossip(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-c.gossip.Events():
			members, event, ok := gossip.Departed(e)
			if !ok {
				continue
			}
			for _, m := range members {
				if m.Tags[gossip.TagRole] != "agent" {
					continue
				}
				c.logger.Warn("agent left gossip", "agent", m.Name, "event", event)
				c.mu.Lock()
				link := c.links[m.Name]
				c.mu.Unlock()
				if link != nil {
					c.startGrace(ctx, m.Name, link)
				}
			}
		}
	}
}

// serveModules answers an agent's module fetches, one per stream.
func (c *Coordinator) serveModules(ctx context.Context, conn *quicnet.ControlConn) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		wg.Go(func() {
			defer st.Close()
			_ = st.SetDeadline(time.Now().Add(time.Minute))
			var req wire.FetchModule
			if err := wire.Expect(st, wire.TypeFetchModule, &req); err != nil {
				return
			}
			// A module the log names that this server lacks (it was down
			// when it was uploaded) is fetched from another server first.
			serveFetch(ctx, st, c.modulesDir, req.Hash, c.ensureNamed)
		})
	}
}

// frame is one control message on its way to an agent.
type frame struct {
	typ  string
	body any
}

// remoteLink is the coordinator's link to an agent over its control
// stream. Messages queue in out and are written in order by write.
type remoteLink struct {
	name  string
	epoch uint64
	out   chan frame
	done  chan struct{} // closed when the stream's reader stops

	conn *quicnet.ControlConn
}

// close ends the agent's connection: it was declared lost.
func (l *remoteLink) close() { _ = l.conn.Close("declared lost") }

func (l *remoteLink) enqueue(f frame) {
	select {
	case l.out <- f:
	case <-l.done:
	default:
		// The queue holds far more than an agent's slots; a full one
		// means the agent stopped reading, and it will be declared lost.
	}
}

func (l *remoteLink) launch(x launch) {
	msg := &wire.Launch{
		Epoch:        l.epoch,
		Job:          x.job,
		Tenant:       x.tenant,
		Token:        x.token,
		Spec:         x.spec.Own(),
		Conf:         x.conf,
		OutputFile:   x.outputFile,
		OutputVolume: x.outputVolume,
		OutputFormat: x.outputFormat,
		InlineOutput: x.inlineOutput,
		BlockServers: x.blockServers,
	}
	for _, name := range slices.Sorted(maps.Keys(x.volumes)) {
		msg.Volumes = append(msg.Volumes, x.volumes[name])
	}
	for _, b := range x.modules {
		msg.Modules = append(msg.Modules, wire.ModuleRef{Name: b.Name, Hash: b.Hash, Size: b.Size})
	}
	l.enqueue(frame{wire.TypeLaunch, msg})
}

func (l *remoteLink) kill(attempts []core.Attempt) {
	for _, at := range attempts {
		l.enqueue(frame{wire.TypeKill, &wire.Kill{Epoch: l.epoch, Attempt: wire.Attempt{Job: at.Job, Task: at.Task, Attempt: at.Attempt}}})
	}
}

// ack acknowledges the agent's statuses through seq (0: an agent that
// does not number them).
func (l *remoteLink) ack(seq uint64) {
	if seq > 0 {
		l.enqueue(frame{wire.TypeAck, &wire.Ack{Seq: seq}})
	}
}

func (l *remoteLink) removeJob(job string) error {
	l.enqueue(frame{wire.TypeRemoveJob, &wire.RemoveJob{Epoch: l.epoch, Job: job}})
	return nil
}

func (l *remoteLink) peerLost(agent, blockAddr string) {
	l.enqueue(frame{wire.TypePeerLost, &wire.PeerLost{Epoch: l.epoch, Agent: agent, BlockAddr: blockAddr}})
}

// write sends queued messages until ctx ends: those queued together (the
// launches of one offer cycle) go out in one write.
func (l *remoteLink) write(ctx context.Context, w io.Writer) {
	bw := bufio.NewWriterSize(w, 64<<10)
	for {
		select {
		case f := <-l.out:
			err := wire.Write(bw, f.typ, f.body)
		more:
			for err == nil {
				select {
				case f := <-l.out:
					err = wire.Write(bw, f.typ, f.body)
				default:
					break more
				}
			}
			if err != nil || bw.Flush() != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// nodeIdentity is a node's authority, certificate and key, read once.
type nodeIdentity struct {
	caPEM, certPEM, keyPEM []byte
	cert                   tls.Certificate
}

// loadNode reads a node's authority, certificate and key and checks that
// the certificate names the node.
func loadNode(files TLSFiles, name string) (*nodeIdentity, error) {
	var n nodeIdentity
	var err error
	if n.caPEM, err = os.ReadFile(files.CA); err != nil {
		return nil, fmt.Errorf("grid: cluster CA: %w", err)
	}
	if n.certPEM, err = os.ReadFile(files.Cert); err != nil {
		return nil, fmt.Errorf("grid: node certificate: %w", err)
	}
	if n.keyPEM, err = os.ReadFile(files.Key); err != nil {
		return nil, fmt.Errorf("grid: node key: %w", err)
	}
	if n.cert, err = tls.X509KeyPair(n.certPEM, n.keyPEM); err != nil {
		return nil, fmt.Errorf("grid: node certificate %s: %w", files.Cert, err)
	}
	if n.cert.Leaf != nil && n.cert.Leaf.Subject.CommonName != name {
		return nil, fmt.Errorf("grid: the certificate %s names %q, but this node is %q: issue one for it (grid init) or change name", files.Cert, n.cert.Leaf.Subject.CommonName, name)
	}
	return &n, nil
}

// mutual is the node's mutual TLS configs for a protocol.
func (n *nodeIdentity) mutual(alpn string) (server, client *tls.Config, err error) {
	return certs.Mutual(n.caPEM, n.cert, alpn)
}

func defaultCacheDir(dir string) string {
	switch dir {
	case "off":
		return ""
	case "":
		if d, err := os.UserCacheDir(); err == nil {
			return filepath.Join(d, "wasmgrid", "wazero")
		}
	}
	return dir
}

package grid

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/core"
	"github.com/wasmgrid/wasmgrid/internal/gossip"
	"github.com/wasmgrid/wasmgrid/internal/raftlog"
	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/shuffle/quicnet"
)

// openLog opens the coordinator's replicated log in STATE_DIR/raft: the
// job state it holds is restored into the core before anything is served.
func (c *Coordinator) openLog(id *nodeIdentity) error {
	cfg := c.cfg
	serverTLS, clientTLS, err := id.mutual(quicnet.ControlALPN)
	if err != nil {
		return err
	}
	addr := cfg.RaftAddr
	servers := cfg.Servers
	self := cfg.ServerID
	if self == 0 {
		self = 1
	}
	if len(servers) == 0 {
		if addr == "" {
			host, _, _ := net.SplitHostPort(c.control.Addr().String())
			addr = net.JoinHostPort(host, "0")
		}
		servers = []ServerConfig{{ID: self, Name: cfg.Name, RaftAddr: addr, APIAddr: cfg.APIAddr}}
	}
	var peers []raftlog.Peer
	for _, s := range servers {
		peers = append(peers, raftlog.Peer{ID: s.ID, Name: s.Name, Addr: s.RaftAddr})
		if s.ID == self && addr == "" {
			addr = s.RaftAddr
		}
	}
	if c.raftNet, err = raftlog.ListenQUIC(addr, raftlog.QUICConfig{ServerTLS: serverTLS, ClientTLS: clientTLS, Logger: c.logger.With("role", "raft")}); err != nil {
		return fmt.Errorf("grid: the replicated log's listener on %s: %w", addr, err)
	}
	if len(cfg.Servers) == 0 {
		// Alone, the server's address is the one it got.
		peers[0].Addr = c.raftNet.Addr()
	}
	rcfg := raftlog.DefaultConfig()
	rcfg.ID, rcfg.Peers, rcfg.Transport = self, peers, c.raftNet
	rcfg.ClusterID = clusterID(id.caPEM)
	rcfg.Dir = filepath.Join(cfg.StateDir, "raft")
	rcfg.Logger = c.logger.With("role", "raft")
	rcfg.Join = cfg.JoinCluster
	if len(cfg.Servers) <= 1 {
		rcfg = withLocalTimers(rcfg)
	}
	c.coord.leading = false
	if c.raft, err = raftlog.Open(rcfg, c.coord); err != nil {
		return explainState(err, cfg)
	}
	c.coord.log = c.raft
	return nil
}

// withLocalTimers makes a server that is alone elect itself at once.
func withLocalTimers(cfg raftlog.Config) raftlog.Config {
	l := raftlog.LocalConfig()
	cfg.TickInterval, cfg.ElectionTicks, cfg.HeartbeatTicks = l.TickInterval, l.ElectionTicks, l.HeartbeatTicks
	return cfg
}

// clusterID names the cluster by its certificate authority: a state
// directory of another cluster is refused.
func clusterID(caPEM []byte) string {
	sum := sha256.Sum256(caPEM)
	return "wasmgrid-" + hex.EncodeToString(sum[:8])
}

// followLeadership makes this server carry out the core's decisions while
// it leads the replicated log, and stop when it does not.
func (c *Coordinator) followLeadership(ctx context.Context, led chan<- struct{}) {
	first := true
	for {
		select {
		case <-ctx.Done():
			return
		case leading := <-c.raft.LeaderCh():
			if !leading {
				c.coord.stepDown()
				_ = c.gossip.SetTag(gossip.TagLeader, "0")
				c.logger.Warn("no longer the coordinators' leader")
				continue
			}
			orphans := c.coord.takeOver()
			_ = c.gossip.SetTag(gossip.TagLeader, strconv.FormatUint(c.raft.Status().Term, 10))
			c.logger.Info("leading the coordinators", "jobs", c.coord.running(), "agents_to_reregister", len(orphans))
			// Agents the state knows have their grace period to register
			// with this leader; those that do not are lost.
			for _, name := range orphans {
				c.startGrace(ctx, name, nil)
			}
			c.importLegacyTokens(ctx)
			if first {
				first = false
				close(led)
			}
		}
	}
}

// takeOver makes this server carry out the core's decisions: the shell's
// side of every running job is rebuilt from the state, commits that were
// under way are carried out again, and a tick schedules what waits. It
// returns the agents the state knows that have no link here yet.
func (c *coordinator) takeOver() (orphans []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leading = true
	for _, ji := range c.core.Jobs() {
		if ji.State != core.Running && ji.State != core.Committing || c.jobs[ji.ID] != nil {
			continue
		}
		j, err := c.rebuild(ji)
		if err != nil {
			c.logger.Error("a running job cannot be carried on: it will fail", "job", ji.ID, "err", err)
			go c.cancel(ji.ID, err.Error())
			continue
		}
		c.jobs[ji.ID] = j
	}
	for _, cm := range c.core.Committing() {
		c.carry(cm)
	}
	for _, ag := range c.core.Agents() {
		if c.links[ag.Name] == nil {
			orphans = append(orphans, ag.Name)
		}
	}
	// The leader serves the modules: those it lacks are fetched now.
	c.wantModules()
	c.bg.Go(func() { c.apply(core.Command{Tick: &struct{}{}}) })
	return orphans
}

// stepDown stops carrying out decisions: another server leads.
func (c *coordinator) stepDown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leading = false
	for id, j := range c.jobs {
		j.cancel()
		c.outputs.release(j.out.String())
		delete(c.jobs, id)
	}
}

// running is the number of jobs this server carries.
func (c *coordinator) running() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.jobs)
}

// rebuild makes the shell's side of a running job from its payload in the
// replicated state.
func (c *coordinator) rebuild(ji core.JobInfo) (*jobRun, error) {
	var p jobPayload
	if err := json.Unmarshal(ji.Payload, &p); err != nil {
		return nil, fmt.Errorf("its record does not decode: %w", err)
	}
	vol := p.Output.Volume
	if p.Output.Stdout {
		vol = c.results
	}
	st, err := c.stores.Store(vol)
	if err != nil {
		return nil, fmt.Errorf("its output's volume %s: %w", vol.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &jobRun{
		id: ji.ID, tenant: ji.Tenant, name: ji.Name, token: p.Token, modules: p.Modules,
		conf: p.Conf, sink: p.Sink, ctx: ctx, cancel: cancel, start: ji.Submitted,
		out:      &storage.Output{Store: st, Volume: vol.Name, Dir: p.Output.Dir, Job: ji.ID, Tenant: ji.Tenant},
		outURL:   p.Output.URL,
		stdout:   p.Output.Stdout,
		volumes:  p.Volumes,
		progress: make(chan api.Progress, 1),
		done:     make(chan struct{}),
	}
	if j.stdout {
		j.resultDir = filepath.Join(c.results.Root(), p.Output.Dir)
	}
	if plan, ok := c.core.Plan(ji.ID); ok {
		j.plan = plan.String()
	}
	if err := c.outputs.reserve(j.out.String(), ji.ID); err != nil {
		return nil, err
	}
	return j, nil
}

// leads reports whether this server leads the replicated log and has
// taken over the jobs: only then are decisions carried out here.
func (c *Coordinator) leads() bool {
	c.coord.mu.Lock()
	defer c.coord.mu.Unlock()
	return c.coord.leading
}

// leaderHint names the leader for a refusal, when one is known.
func (c *Coordinator) leaderHint() string {
	st := c.raft.Status()
	if st.Leader.ID == 0 {
		return " (an election is under way: try again in a moment)"
	}
	if api := c.serverAPI(st.Leader.ID); api != "" {
		return fmt.Sprintf(" (%s, API %s)", st.Leader.Name, api)
	}
	return " (" + st.Leader.Name + ")"
}

// serverAPI is the API URL of server id: from the config, or for a
// server added since, from its addition or its gossip tags.
func (c *Coordinator) serverAPI(id uint64) string {
	for _, s := range c.cfg.Servers {
		if s.ID == id && s.APIAddr != "" {
			return "https://" + s.APIAddr
		}
	}
	return c.addedAPI(id)
}

// joinServers joins the other coordinator servers' gossip, so that agents
// that joined any of them see every one; it retries until ctx ends or it
// succeeds.
func (c *Coordinator) joinServers(ctx context.Context) {
	var addrs []string
	for _, s := range c.cfg.Servers {
		if s.ID != c.cfg.ServerID && s.GossipAddr != "" {
			addrs = append(addrs, s.GossipAddr)
		}
	}
	if len(addrs) == 0 {
		return
	}
	for backoff := 100 * time.Millisecond; ctx.Err() == nil; backoff = min(2*backoff, 2*time.Second) {
		if n, _ := c.gossip.Join(addrs); n > 0 {
			return
		}
		sleep(ctx, backoff)
	}
}

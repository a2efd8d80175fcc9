package gossip

import (
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// Serf tags a node advertises.
const (
	TagRole    = "role" // "coordinator" or "agent"
	TagControl = "control"
	TagAPI     = "api"
	TagBlocks  = "blocks"
	TagCPU     = "cpu_millis"
	TagMem     = "mem_mib"
	TagDisk    = "disk_mib"
	TagVersion = "version"
	// TagLeader is the raft term of the coordinator server that leads
	// the replicated log ("0" on a follower): agents register with the
	// one of the highest term.
	TagLeader = "leader"
)

// Agent is a node's serf membership.
type Agent struct {
	s      *serf.Serf
	events chan serf.Event
	addr   string
}

// Start joins nothing yet: it starts this node's serf agent on
// bindAddr (port 0 picks one) with an encrypted keyring.
func Start(name, bindAddr string, key []byte, tags map[string]string, logger *slog.Logger) (*Agent, error) {
	host, portStr, err := net.SplitHostPort(bindAddr)
	if err != nil {
		return nil, fmt.Errorf("grid: gossip address %q: %w", bindAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("grid: gossip port %q: %w", portStr, err)
	}
	cfg := serf.DefaultConfig()
	cfg.NodeName = name
	cfg.Tags = tags
	ml := memberlist.DefaultLocalConfig()
	ml.BindAddr, ml.BindPort = host, port
	ml.AdvertiseAddr, ml.AdvertisePort = "", 0
	ml.RetransmitMult = 4 // field notes: clean convergence of simultaneous joins on loopback
	ml.SecretKey = key
	ml.GossipVerifyIncoming, ml.GossipVerifyOutgoing = true, true
	// serf and memberlist log through the standard logger; keep them
	// quiet and route what they say to slog at debug level.
	std := log.New(slogWriter{logger}, "", 0)
	ml.Logger = std
	cfg.Logger = std
	cfg.MemberlistConfig = ml
	events := make(chan serf.Event, 256)
	cfg.EventCh = events
	// A node that comes back under the same name replaces its old self.
	cfg.ReconnectTimeout = 0
	cfg.TombstoneTimeout = 0
	s, err := serf.Create(cfg)
	if err != nil {
		return nil, fmt.Errorf("grid: start gossip on %s: %w", bindAddr, err)
	}
	addr := net.JoinHostPort(host, strconv.Itoa(ml.BindPort))
	return &Agent{s: s, events: events, addr: addr}, nil
}

// Addr is the address the agent's gossip listens on.
func (g *Agent) Addr() string { return g.addr }

// Events are serf's events (buffered: 256); Departed reads the ones
// that matter to grid.
func (g *Agent) Events() <-chan serf.Event { return g.events }

// Members is every member the agent knows of, itself included, whatever
// its status.
func (g *Agent) Members() []serf.Member { return g.s.Members() }

// Join joins the members at addrs, ignoring events from before the join,
// and says how many it reached.
func (g *Agent) Join(addrs []string) (int, error) { return g.s.Join(addrs, true) }

// SetTag changes one of this node's tags; serf gossips the change.
func (g *Agent) SetTag(key, value string) error {
	tags := map[string]string{}
	for k, v := range g.s.LocalMember().Tags {
		tags[k] = v
	}
	tags[key] = value
	return g.s.SetTags(tags)
}

// Close leaves the cluster and stops the agent.
func (g *Agent) Close() {
	_ = g.s.Leave()
	_ = g.s.Shutdown()
}

// Departed reports whether e says members failed or left, and which, with
// the event's name ("member-failed", "member-leave").
func Departed(e serf.Event) (members []serf.Member, event string, ok bool) {
	me, ok := e.(serf.MemberEvent)
	if !ok {
		return nil, "", false
	}
	switch me.Type {
	case serf.EventMemberFailed, serf.EventMemberLeave:
		return me.Members, me.Type.String(), true
	}
	return nil, "", false
}

// slogWriter turns standard-logger lines into debug records.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug(strings.TrimSpace(string(p)), "from", "serf")
	return len(p), nil
}

var _ io.Writer = slogWriter{}

// LoadKeyring reads a gossip key: base64 of 16, 24 or 32 bytes, alone in
// the file (grid init writes one).
func LoadKeyring(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("grid: gossip key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("grid: gossip key %s is not base64: %w", path, err)
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("grid: gossip key %s has %d bytes; it must have 16, 24 or 32 (grid init makes one)", path, len(key))
}

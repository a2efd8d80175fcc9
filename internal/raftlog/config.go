package raftlog

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// FSM is the replicated state machine. Its methods are called one at a
// time, in log order: by Open while it replays the state dir, then by the
// goroutine of Run. They run on the raft loop, so they must be quick.
type FSM interface {
	// Apply applies one committed command. It must be deterministic and
	// never fail: a command the state machine refuses is refused as data.
	// Indexes grow but are not contiguous: the log also holds entries
	// that are not commands (elections, membership changes).
	Apply(index uint64, cmd []byte)
	// Snapshot returns the whole state as of the last Apply.
	Snapshot() ([]byte, error)
	// Restore replaces the whole state with a snapshot taken at index.
	Restore(index uint64, snapshot []byte) error
}

// Peer is one server of the cluster.
type Peer struct {
	// ID names the server for all time: an id is never reused, even after
	// its server was removed. Not zero.
	ID uint64
	// Name is the common name of the server's certificate: the QUIC
	// transport accepts messages from ID only over a connection whose
	// peer certificate has this name.
	Name string
	// Addr is the host:port of the server's raft transport (UDP, QUIC).
	Addr string
}

// Config configures a Node. A zero field means its default.
type Config struct {
	// ID is this server's id, one of Peers.
	ID uint64
	// Peers are the members: in a new state dir, the initial members (1,
	// 3 or 5); in an existing one, they must have the ids and names of the
	// members recorded there (nil means: use the recorded ones). An
	// address in Peers replaces the recorded one for this server's dialing.
	Peers []Peer
	// Join starts a server that AddMember has just added to a running
	// cluster: a new state dir starts empty and takes the state from the
	// leader, instead of starting a new cluster. Ignored when Dir holds
	// state already.
	Join bool
	// ClusterID names the cluster. It is written into a new state dir,
	// and a dir of another cluster is refused.
	ClusterID string
	// Dir is the state directory; raft.db lives there.
	Dir string
	// Transport carries the messages between servers.
	Transport Transport
	// SnapshotEntries is how many entries are applied between two
	// snapshots, after each of which the log is compacted (default 10000).
	SnapshotEntries uint64
	// TickInterval is raft's clock tick (default 100ms).
	TickInterval time.Duration
	// ElectionTicks is the election timeout in ticks (default 10): a
	// follower that hears no leader for 1-2 election timeouts campaigns,
	// and a leader that hears from no majority for one steps down.
	ElectionTicks int
	// HeartbeatTicks is the leader's heartbeat interval in ticks
	// (default 1).
	HeartbeatTicks int
	// Logger receives the node's and raft's logs (nil: discard).
	Logger *slog.Logger
}

// DefaultConfig returns the defaults for servers on a LAN: 100ms ticks,
// elections after 1-2 s of silence, a snapshot every 10,000 entries.
func DefaultConfig() Config {
	return Config{SnapshotEntries: 10000, TickInterval: 100 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 1}
}

// LocalConfig returns fast timers for servers on one machine (tests, the
// embedded grid): 20ms ticks, elections after 200-400 ms of silence.
func LocalConfig() Config {
	c := DefaultConfig()
	c.TickInterval = 20 * time.Millisecond
	return c
}

// populate returns a copy of c with defaults filled in, or an error
// saying what is wrong with it. The caller's value is not changed.
func (c Config) populate() (Config, error) {
	d := DefaultConfig()
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = d.SnapshotEntries
	}
	if c.TickInterval <= 0 {
		c.TickInterval = d.TickInterval
	}
	if c.ElectionTicks <= 0 {
		c.ElectionTicks = d.ElectionTicks
	}
	if c.HeartbeatTicks <= 0 {
		c.HeartbeatTicks = d.HeartbeatTicks
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Peers = sortedPeers(c.Peers)
	switch {
	case c.ID == 0:
		return c, errors.New("raftlog: Config.ID is zero")
	case c.Dir == "":
		return c, errors.New("raftlog: Config.Dir is empty")
	case c.ClusterID == "":
		return c, errors.New("raftlog: Config.ClusterID is empty")
	case c.Transport == nil:
		return c, errors.New("raftlog: Config.Transport is nil")
	case c.HeartbeatTicks >= c.ElectionTicks:
		return c, fmt.Errorf("raftlog: HeartbeatTicks (%d) must be fewer than ElectionTicks (%d)", c.HeartbeatTicks, c.ElectionTicks)
	}
	if err := checkMembers(c.Peers); err != nil {
		return c, fmt.Errorf("raftlog: Config.Peers: %w", err)
	}
	if len(c.Peers) > 0 {
		if _, ok := peerByID(c.Peers, c.ID); !ok {
			return c, fmt.Errorf("raftlog: Config.ID %d is not one of Config.Peers", c.ID)
		}
	}
	return c, nil
}

func peerByID(ps []Peer, id uint64) (Peer, bool) {
	for _, p := range ps {
		if p.ID == id {
			return p, true
		}
	}
	return Peer{}, false
}

// ErrRetry is wrapped by the error of a proposal that is known not to be
// in the log: raft dropped it, or a new leader replaced the entry. The
// command was not applied anywhere and may be proposed again.
var ErrRetry = errors.New("raftlog: the proposal was not committed; propose it again")

// ErrStopped is wrapped by the error of a call made after Run returned,
// or waiting when it returned.
var ErrStopped = errors.New("raftlog: the node is stopped")

// ErrOtherCluster, ErrOtherServer and ErrMembers are wrapped by Open's
// errors for a state dir of another cluster, a state dir of another
// server id, and Config.Peers that disagree with the recorded members:
// the caller explains them in its own terms (its config's settings).
var (
	ErrOtherCluster = errors.New("raftlog: the state dir belongs to another cluster")
	ErrOtherServer  = errors.New("raftlog: the state dir belongs to another server")
	ErrMembers      = errors.New("raftlog: the configured members disagree with the recorded ones")
)

// NotLeaderError is returned by Propose, AddMember and RemoveMember on a
// server that is not the leader. The leader fields are empty while no
// leader is known (during an election).
type NotLeaderError struct {
	LeaderID   uint64
	LeaderName string
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == 0 {
		return "raftlog: not the leader, and no leader is known (an election is under way)"
	}
	return fmt.Sprintf("raftlog: not the leader: the leader is %d (%s at %s)", e.LeaderID, e.LeaderName, e.LeaderAddr)
}

// Status describes a node as of the end of its last Ready.
type Status struct {
	ID   uint64
	Name string
	// Term is the raft term.
	Term uint64
	// Leader is the leader this node knows (zero when none).
	Leader   Peer
	IsLeader bool
	// CommitIndex is the highest index known to be committed.
	CommitIndex uint64
	// AppliedIndex is the highest index applied to the FSM.
	AppliedIndex uint64
	// SnapshotIndex is the index of the latest snapshot in the state dir.
	SnapshotIndex uint64
	// Members are the voters, sorted by id.
	Members []Peer
	// Unreachable are the members this node has not heard from for an
	// election timeout (only a leader hears from everybody).
	Unreachable []Peer
}

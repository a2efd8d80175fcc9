package raftlog

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Node is one server of a replicated log. Open builds it from its state
// dir; Run drives it. Propose, AddMember, RemoveMember, Status, LeaderCh
// and WaitLeader are safe for concurrent use.
type Node struct {
	cfg  Config
	fsm  FSM
	log  *slog.Logger
	disk *diskStore
	ms   *raft.MemoryStorage
	rn   *raft.RawNode

	// Owned by Open, then by the goroutine of Run.
	members   []Peer            // the voters as of applied, sorted by id
	addrs     map[uint64]string // addresses from Config.Peers, which win
	applied   uint64            // the last index applied to the FSM
	delivered uint64            // the last committed index raft handed out
	snapIndex uint64            // the index of the snapshot in the state dir
	snapRetry uint64            // after a failed FSM.Snapshot: the applied index to try again at
	nextID    uint64            // the next proposal id
	unplaced  map[uint64]*waiter
	placed    map[uint64][]*waiter // by index: a leader again may reuse an index whose entry it lost
	lastHeard map[uint64]time.Time
	isLeader  bool
	badSender map[string]bool // senders already warned about
	answers   []answer        // results to send after the next publish

	propc   chan *proposal
	recvc   chan received
	reportc chan struct{} // a report is waiting in reports
	leaderc chan bool     // capacity 1: holds the latest change only

	reportMu sync.Mutex
	reports  []report // protected by reportMu

	started atomic.Bool
	stopped chan struct{} // closed when Run returns

	statusMu sync.Mutex
	status   Status        // protected by statusMu
	statusCh chan struct{} // protected by statusMu; closed at each publish
}

type proposalKind int

const (
	propCommand proposalKind = iota
	propAddMember
	propRemoveMember
)

type proposal struct {
	kind proposalKind
	cmd  []byte
	peer Peer
	resp chan result // capacity 1
}

type result struct {
	index uint64
	err   error
}

// waiter is a proposal in the log, at index in term, or not yet placed.
type waiter struct {
	id          uint64
	index, term uint64
	resp        chan result
}

type answer struct {
	resp chan result
	r    result
}

type received struct {
	sender string
	m      *raftpb.Message
}

// report is what the transport says of what it sent: a peer it could not
// reach, or how a snapshot went.
type report struct {
	id       uint64
	snapshot bool // a snapshot report; else the peer was unreachable
	failed   bool // the snapshot was not delivered
}

// Open reads the state dir (creating it for a new cluster), restores the
// latest snapshot into fsm and applies the committed entries after it,
// before it returns. It starts no goroutine: Run does. A state dir that
// cannot be read back gives a *CorruptError.
func Open(cfg Config, fsm FSM) (*Node, error) {
	cfg, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	if fsm == nil {
		return nil, errors.New("raftlog: the FSM is nil")
	}
	init := func(tx *bolt.Tx) error {
		if len(cfg.Peers) == 0 {
			return errors.New("raftlog: a new state dir needs Config.Peers")
		}
		if cfg.Join {
			return nil // the leader's snapshot brings the state
		}
		return putBootstrap(tx, cfg.Peers)
	}
	disk, _, err := openDisk(cfg.Dir, cfg.ClusterID, cfg.ID, init)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, fsm: fsm, log: cfg.Logger.With("raft_id", cfg.ID), disk: disk,
		ms:        raft.NewMemoryStorage(),
		addrs:     map[uint64]string{},
		unplaced:  map[uint64]*waiter{},
		placed:    map[uint64][]*waiter{},
		lastHeard: map[uint64]time.Time{},
		badSender: map[string]bool{},
		propc:     make(chan *proposal),
		recvc:     make(chan received, 256),
		reportc:   make(chan struct{}, 1),
		leaderc:   make(chan bool, 1),
		stopped:   make(chan struct{}),
		statusCh:  make(chan struct{}),
	}
	if err := n.restore(); err != nil {
		_ = disk.close()
		return nil, err
	}
	n.publish()
	return n, nil
}

// putBootstrap writes the state of a new cluster: a snapshot at index 1,
// term 1, holding the members and no FSM state. Every initial member
// writes the same one, so their logs agree from the start.
func putBootstrap(tx *bolt.Tx, peers []Peer) error {
	snap := &raftpb.Snapshot{
		Data: encodeSnapshot(snapshotData{members: peers}),
		Metadata: &raftpb.SnapshotMetadata{
			ConfState: confStateOf(peers),
			Index:     new(uint64(1)),
			Term:      new(uint64(1)),
		},
	}
	if err := putRecord(tx.Bucket(bucketSnapshot), keySnap, snap); err != nil {
		return err
	}
	return putRecord(tx.Bucket(bucketHardState), keyHS, &raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(1))})
}

func confStateOf(ps []Peer) *raftpb.ConfState {
	cs := raftpb.EnsureConfState(nil)
	for _, p := range ps {
		cs.Voters = append(cs.Voters, p.ID)
	}
	return cs
}

// restore loads the state dir into the FSM, the memory storage and a new
// RawNode.
func (n *Node) restore() error {
	p, err := n.disk.load()
	if err != nil {
		return err
	}
	var sd snapshotData
	if p.snap != nil {
		if sd, err = decodeSnapshot(p.snap.GetData()); err != nil {
			return &CorruptError{Path: n.disk.path, Record: fmt.Sprintf("snapshot/latest (index %d)", p.snap.GetMetadata().GetIndex()), Err: err}
		}
		n.members = sd.members
		n.snapIndex = p.snap.GetMetadata().GetIndex()
	}
	commit := p.hs.GetCommit()
	if err := n.replayMembers(p.entries, commit); err != nil {
		return err
	}
	if err := n.checkPeers(); err != nil {
		return err
	}
	if sd.hasFSM {
		if err := n.fsm.Restore(n.snapIndex, sd.fsm); err != nil {
			return fmt.Errorf("raftlog: the FSM refused the snapshot at index %d in %s: %w; run a server version that reads it, or %s", n.snapIndex, n.disk.path, err, repairAdvice)
		}
	}
	n.applied, n.delivered = n.snapIndex, n.snapIndex
	for _, e := range p.entries {
		if e.GetIndex() > commit {
			break
		}
		if e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 {
			_, _, cmd, _ := decodeEntry(e.GetData())
			n.fsm.Apply(e.GetIndex(), cmd)
		}
		n.applied = e.GetIndex()
	}
	if p.snap != nil {
		if err := n.ms.ApplySnapshot(p.snap); err != nil {
			return fmt.Errorf("raftlog: %s: %w", n.disk.path, err)
		}
	}
	if err := n.ms.SetHardState(p.hs); err != nil {
		return fmt.Errorf("raftlog: %s: %w", n.disk.path, err)
	}
	if err := n.ms.Append(p.entries); err != nil {
		return fmt.Errorf("raftlog: %s: %w", n.disk.path, err)
	}
	return n.newRawNode()
}

// checkPeers compares Config.Peers with the members recorded in the state
// dir, by id and name; the config's addresses replace the recorded ones.
func (n *Node) checkPeers() error {
	for _, p := range n.cfg.Peers {
		n.addrs[p.ID] = p.Addr
	}
	if len(n.cfg.Peers) == 0 || n.members == nil {
		return nil // nothing to compare: the recorded members, or a joining server's config
	}
	var diffs []string
	for _, p := range n.cfg.Peers {
		m, ok := peerByID(n.members, p.ID)
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%d (%s) is in the config but not a member", p.ID, p.Name))
		case m.Name != p.Name:
			diffs = append(diffs, fmt.Sprintf("%d is named %s in the config but %s in the state", p.ID, p.Name, m.Name))
		case m.Addr != p.Addr:
			n.log.Info("raftlog: using the config's address of a member", "member", p.ID, "config", p.Addr, "state", m.Addr)
		}
	}
	for _, m := range n.members {
		if _, ok := peerByID(n.cfg.Peers, m.ID); !ok {
			diffs = append(diffs, fmt.Sprintf("%d (%s) is a member but not in the config", m.ID, m.Name))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("raftlog: Config.Peers disagree with the members recorded in %s: %s; start with Peers equal to the members %s (or no Peers), and change membership with AddMember and RemoveMember: %w", n.disk.path, strings.Join(diffs, "; "), describePeers(n.members), ErrMembers)
	}
	return nil
}

func describePeers(ps []Peer) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprintf("%d (%s at %s)", p.ID, p.Name, p.Addr)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// changeMembers applies a committed membership change to n.members.
func (n *Node) changeMembers(cc *raftpb.ConfChange) error {
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode:
		p, err := decodePeer(cc.GetContext())
		if err != nil {
			return err
		}
		if p.ID != cc.GetNodeId() {
			return fmt.Errorf("a configuration change adds %d with the context of %d: %w", cc.GetNodeId(), p.ID, errCorrupt)
		}
		n.members = sortedPeers(append(slices.DeleteFunc(slices.Clone(n.members), func(m Peer) bool { return m.ID == p.ID }), p))
	case raftpb.ConfChangeRemoveNode:
		n.members = slices.DeleteFunc(slices.Clone(n.members), func(m Peer) bool { return m.ID == cc.GetNodeId() })
	default:
		return fmt.Errorf("configuration change type %v is not used by raftlog: %w", cc.GetType(), errCorrupt)
	}
	return nil
}

// peer returns the member id, with the config's address, if it knows it.
func (n *Node) peer(id uint64) (Peer, bool) {
	p, ok := peerByID(n.members, id)
	if n.members == nil {
		// A joining server before the leader's snapshot: its config
		// names the members.
		p, ok = peerByID(n.cfg.Peers, id)
	}
	if a, found := n.addrs[id]; ok && found {
		p.Addr = a
	}
	return p, ok
}

// Close releases the state dir of a node whose Run was never called.
// After Run was called it does nothing: Run releases it.
func (n *Node) Close() error {
	if !n.started.CompareAndSwap(false, true) {
		return nil
	}
	close(n.stopped)
	return n.disk.close()
}

// Backup writes a consistent copy of raft.db to w while the node runs
// (bbolt's online Tx.WriteTo, which does not stop the raft loop), and
// returns its size. The copy is the file as it was at one transaction;
// docs/raftlog.md, "Backups", says when restoring it is safe.
func (n *Node) Backup(w io.Writer) (int64, error) {
	var size int64
	err := n.disk.db.View(func(tx *bolt.Tx) error {
		var err error
		size, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return size, fmt.Errorf("raftlog: back up %s: %w", n.disk.path, err)
	}
	return size, nil
}

// replayMembers checks every entry, committed or not, and replays the
// membership changes up to the commit index onto the snapshot's members.
func (n *Node) replayMembers(entries []*raftpb.Entry, commit uint64) error {
	for _, e := range entries {
		rec := fmt.Sprintf("entries/%016x (index %d)", e.GetIndex(), e.GetIndex())
		switch e.GetType() {
		case raftpb.EntryNormal:
			if len(e.GetData()) > 0 {
				if _, _, _, err := decodeEntry(e.GetData()); err != nil {
					return &CorruptError{Path: n.disk.path, Record: rec, Err: err}
				}
			}
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				return &CorruptError{Path: n.disk.path, Record: rec, Err: err}
			}
			if e.GetIndex() <= commit {
				if err := n.changeMembers(&cc); err != nil {
					return &CorruptError{Path: n.disk.path, Record: rec, Err: err}
				}
			}
		default:
			return &CorruptError{Path: n.disk.path, Record: rec, Err: fmt.Errorf("entry type %v is not used by raftlog", e.GetType())}
		}
	}
	return nil
}

// newRawNode makes the RawNode over the restored memory storage.
func (n *Node) newRawNode() error {
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	n.nextID = binary.BigEndian.Uint64(idb[:])
	// Applied stays 0: raft hands the committed entries after the
	// snapshot out again, so that it re-applies their membership changes
	// to its own configuration; the FSM does not see them twice.
	var err error
	n.rn, err = raft.NewRawNode(&raft.Config{
		ID:                        n.cfg.ID,
		ElectionTick:              n.cfg.ElectionTicks,
		HeartbeatTick:             n.cfg.HeartbeatTicks,
		Storage:                   n.ms,
		MaxSizePerMsg:             1 << 20,
		MaxInflightMsgs:           256,
		MaxUncommittedEntriesSize: 64 << 20,
		CheckQuorum:               true,
		PreVote:                   true,
		DisableProposalForwarding: true,
		StepDownOnRemoval:         true,
		Logger:                    raftLogger{n.log},
	})
	if err != nil {
		return fmt.Errorf("raftlog: %w", err)
	}
	return nil
}

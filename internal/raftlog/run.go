package raftlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Run is the node's raft loop: it ticks raft's clock, steps the messages
// the transport delivers and the local proposals, and handles every Ready
// (persist, send, apply, advance). It returns when ctx ends, with nil, or
// earlier with the error that stopped it (the state dir cannot be
// written, a committed entry does not decode). It closes the state dir
// and stops the transport before it returns, and fails the proposals
// still waiting. Run is called once.
func (n *Node) Run(ctx context.Context) (err error) {
	if !n.started.CompareAndSwap(false, true) {
		return errors.New("raftlog: Run was called twice, or after Close")
	}
	tctx, cancel := context.WithCancelCause(ctx)
	self, _ := n.peer(n.cfg.ID)
	if self.ID == 0 {
		self = Peer{ID: n.cfg.ID}
	}
	terr := make(chan error, 1)
	go func() { terr <- n.cfg.Transport.Run(tctx, self, inbox{n}) }()
	defer func() {
		cancel(errors.New("raftlog: the node stopped"))
		if e := <-terr; e != nil && err == nil && ctx.Err() == nil {
			err = e
		}
		n.failWaiters(fmt.Errorf("%w: the outcome of the proposal is unknown", ErrStopped))
		close(n.stopped)
		if e := n.disk.close(); e != nil && err == nil {
			err = fmt.Errorf("raftlog: close %s: %w", n.disk.path, e)
		}
		n.publish()
	}()

	start := time.Now()
	for _, m := range n.members {
		n.lastHeard[m.ID] = start
	}
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-terr:
			terr <- e // for the deferred wait
			if ctx.Err() != nil {
				return nil
			}
			if e == nil {
				e = errors.New("the transport stopped")
			}
			return fmt.Errorf("raftlog: transport: %w", e)
		case <-ticker.C:
			n.rn.Tick()
		case r := <-n.recvc:
			n.step(r)
		case p := <-n.propc:
			n.propose(p)
		case <-n.reportc:
			n.takeReports()
		}
		n.drain()
		for n.rn.HasReady() {
			if err := n.handleReady(); err != nil {
				n.log.Error("raftlog: the node stops", "err", err)
				return err
			}
		}
		if err := n.maybeSnapshot(); err != nil {
			n.log.Error("raftlog: the node stops", "err", err)
			return err
		}
		n.publish()
		n.flushAnswers()
	}
}

// answer queues a proposal's result: it is sent after the status that
// reflects it is published, so that Status after Propose shows its index
// applied.
func (n *Node) answer(w *waiter, r result) { n.answers = append(n.answers, answer{w.resp, r}) }

func (n *Node) flushAnswers() {
	for _, a := range n.answers {
		a.resp <- a.r
	}
	clear(n.answers)
	n.answers = n.answers[:0]
}

// drain steps what else is waiting, up to a bound, so that one Ready (one
// fsync) covers a burst.
func (n *Node) drain() {
	for range 64 {
		select {
		case r := <-n.recvc:
			n.step(r)
		case p := <-n.propc:
			n.propose(p)
		default:
			return
		}
	}
}

func (n *Node) step(r received) {
	from := r.m.GetFrom()
	p, ok := n.peer(from)
	if !ok || (r.sender != "" && p.Name != r.sender) {
		if !n.badSender[r.sender] {
			n.badSender[r.sender] = true
			n.log.Warn("raftlog: dropping messages from a sender that is not the member it claims to be", "sender", r.sender, "from", from, "member_name", p.Name)
		}
		return
	}
	n.lastHeard[from] = time.Now()
	if err := n.rn.Step(r.m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
		n.log.Debug("raftlog: step", "from", from, "type", r.m.GetType(), "err", err)
	}
}

func (n *Node) takeReports() {
	n.reportMu.Lock()
	rs := n.reports
	n.reports = nil
	n.reportMu.Unlock()
	for _, r := range rs {
		switch {
		case !r.snapshot:
			n.rn.ReportUnreachable(r.id)
		case r.failed:
			n.rn.ReportSnapshot(r.id, raft.SnapshotFailure)
		default:
			n.rn.ReportSnapshot(r.id, raft.SnapshotFinish)
		}
	}
}

// propose steps a proposal into raft on the leader, or answers at once.
func (n *Node) propose(p *proposal) {
	if st := n.rn.BasicStatus(); st.RaftState != raft.StateLeader {
		p.resp <- result{err: n.notLeader(st.Lead)}
		return
	}
	id := n.nextID
	n.nextID++
	var err error
	switch p.kind {
	case propCommand:
		err = n.rn.Propose(encodeEntry(n.cfg.ID, id, p.cmd))
	case propAddMember:
		err = n.rn.ProposeConfChange(&raftpb.ConfChange{Id: new(id), Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(p.peer.ID), Context: encodePeer(p.peer)})
	case propRemoveMember:
		err = n.rn.ProposeConfChange(&raftpb.ConfChange{Id: new(id), Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: new(p.peer.ID)})
	}
	if err != nil {
		p.resp <- result{err: fmt.Errorf("%w (%v)", ErrRetry, err)}
		return
	}
	n.unplaced[id] = &waiter{id: id, resp: p.resp}
}

func (n *Node) notLeader(lead uint64) error {
	e := &NotLeaderError{LeaderID: lead}
	if p, ok := n.peer(lead); ok {
		e.LeaderName, e.LeaderAddr = p.Name, p.Addr
	}
	return e
}

// handleReady handles one Ready as raft's README says: persist the hard
// state, the entries and the snapshot; only then send the messages; apply
// the snapshot and the committed entries; advance.
func (n *Node) handleReady() error {
	rd := n.rn.Ready()
	var snap *raftpb.Snapshot
	if !raft.IsEmptySnap(rd.Snapshot) {
		snap = rd.Snapshot
	}
	var hs *raftpb.HardState
	if !raft.IsEmptyHardState(rd.HardState) {
		hs = rd.HardState
	}
	if err := n.disk.save(snap, rd.Entries, hs); err != nil {
		return err
	}
	if snap != nil {
		if err := n.ms.ApplySnapshot(snap); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
			return fmt.Errorf("raftlog: %w", err)
		}
	}
	if err := n.ms.Append(rd.Entries); err != nil {
		return fmt.Errorf("raftlog: %w", err)
	}
	if hs != nil {
		if err := n.ms.SetHardState(hs); err != nil {
			return fmt.Errorf("raftlog: %w", err)
		}
	}
	n.place(rd.Entries)
	n.send(rd.Messages)
	if snap != nil {
		if err := n.applySnapshot(snap); err != nil {
			return err
		}
	}
	for _, e := range rd.CommittedEntries {
		if err := n.apply(e); err != nil {
			return err
		}
	}
	if rd.SoftState != nil {
		if leader := rd.SoftState.RaftState == raft.StateLeader; leader != n.isLeader {
			n.isLeader = leader
			n.log.Info("raftlog: leadership changed", "leader", leader, "term", n.rn.BasicStatus().GetTerm())
			select {
			case <-n.leaderc:
			default:
			}
			n.leaderc <- leader
		}
	}
	n.rn.Advance(rd)
	return nil
}

// place ties the waiting proposals to the entries that carry them. A
// proposal is settled later, when its index commits (apply): an entry
// that a new leader's log replaces here may still be committed by a
// later leader that has it, so replacement alone proves nothing.
func (n *Node) place(ents []*raftpb.Entry) {
	for _, e := range ents {
		id, ok := n.ownID(e)
		if w := n.unplaced[id]; ok && w != nil {
			delete(n.unplaced, id)
			w.index, w.term = e.GetIndex(), e.GetTerm()
			n.placed[w.index] = append(n.placed[w.index], w)
		}
	}
	for id, w := range n.unplaced {
		delete(n.unplaced, id)
		n.answer(w, result{err: fmt.Errorf("%w: raft did not append it (a membership change may be under way)", ErrRetry)})
	}
}

// ownID returns the proposal id of an entry this server proposed.
func (n *Node) ownID(e *raftpb.Entry) (uint64, bool) {
	switch e.GetType() {
	case raftpb.EntryNormal:
		proposer, id, err := entryHeaderOf(e.GetData())
		return id, err == nil && proposer == n.cfg.ID
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if proto.Unmarshal(e.GetData(), &cc) != nil {
			return 0, false
		}
		return cc.GetId(), true
	}
	return 0, false
}

// send hands the messages to the transport, grouped by recipient.
func (n *Node) send(msgs []*raftpb.Message) {
	var batch []*raftpb.Message
	for i, m := range msgs {
		batch = append(batch, m)
		if i+1 < len(msgs) && msgs[i+1].GetTo() == m.GetTo() {
			continue
		}
		if p, ok := n.peer(m.GetTo()); ok {
			n.cfg.Transport.Send(p, batch)
		} else {
			n.log.Debug("raftlog: no address for a recipient", "to", m.GetTo())
			n.rn.ReportUnreachable(m.GetTo())
			if m.GetType() == raftpb.MsgSnap {
				n.rn.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
			}
		}
		batch = nil
	}
}

// applySnapshot restores a snapshot received from the leader.
func (n *Node) applySnapshot(snap *raftpb.Snapshot) error {
	idx := snap.GetMetadata().GetIndex()
	sd, err := decodeSnapshot(snap.GetData())
	if err != nil {
		return fmt.Errorf("raftlog: the snapshot at index %d from the leader does not decode: %w", idx, err)
	}
	if sd.hasFSM {
		if err := n.fsm.Restore(idx, sd.fsm); err != nil {
			return fmt.Errorf("raftlog: the FSM refused the snapshot at index %d from the leader: %w", idx, err)
		}
	}
	n.members = sd.members
	n.applied, n.delivered, n.snapIndex = idx, idx, idx
	for i, ws := range n.placed {
		if i <= idx {
			delete(n.placed, i)
			for _, w := range ws {
				n.answer(w, result{err: fmt.Errorf("raftlog: the outcome of the proposal is unknown: a snapshot from the leader replaced the log up to index %d; check the state before proposing again", idx)})
			}
		}
	}
	n.log.Info("raftlog: restored a snapshot from the leader", "index", idx)
	return nil
}

// apply applies one committed entry. Entries up to n.applied were applied
// to the FSM by Open; raft hands them out again after a restart, and only
// their membership changes reach raft's configuration.
func (n *Node) apply(e *raftpb.Entry) error {
	idx := e.GetIndex()
	n.delivered = idx
	fresh := idx > n.applied
	switch e.GetType() {
	case raftpb.EntryNormal:
		if fresh && len(e.GetData()) > 0 {
			_, _, cmd, err := decodeEntry(e.GetData())
			if err != nil {
				return fmt.Errorf("raftlog: the committed entry at index %d does not decode: %w; the log of this server is damaged: %s", idx, err, repairAdvice)
			}
			n.fsm.Apply(idx, cmd)
		}
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return fmt.Errorf("raftlog: the committed configuration change at index %d does not decode: %w", idx, err)
		}
		if fresh {
			if err := n.changeMembers(&cc); err != nil {
				return fmt.Errorf("raftlog: the committed configuration change at index %d: %w", idx, err)
			}
			n.log.Info("raftlog: membership changed", "index", idx, "members", describePeers(n.members))
			// A new member gets the latest snapshot, and raft refuses one
			// whose configuration does not name it: take one now, before
			// raft learns of the change and sends anything.
			n.applied = idx
			if err := n.snapshot(); err != nil {
				return err
			}
		}
		n.rn.ApplyConfChange(&cc)
	default:
		return fmt.Errorf("raftlog: the committed entry at index %d has type %v, which raftlog does not use", idx, e.GetType())
	}
	if fresh {
		n.applied = idx
	}
	for _, w := range n.placed[idx] {
		if e.GetTerm() == w.term {
			n.answer(w, result{index: idx})
		} else {
			n.answer(w, result{err: fmt.Errorf("%w: another entry was committed at index %d", ErrRetry, idx)})
		}
	}
	delete(n.placed, idx)
	return nil
}

// maybeSnapshot takes a snapshot after SnapshotEntries applied entries and
// compacts the log, keeping a tenth of that behind the snapshot for
// followers that lag a little.
func (n *Node) maybeSnapshot() error {
	if n.applied < n.snapIndex+n.cfg.SnapshotEntries || n.applied < n.snapRetry || n.delivered < n.applied {
		return nil
	}
	return n.snapshot()
}

// snapshot takes a snapshot at the applied index and compacts the log.
func (n *Node) snapshot() error {
	data, err := n.fsm.Snapshot()
	if err != nil {
		n.snapRetry = n.applied + max(1, n.cfg.SnapshotEntries/10)
		n.log.Error("raftlog: the FSM could not take a snapshot; the log grows until it can", "index", n.applied, "err", err)
		return nil
	}
	env := encodeSnapshot(snapshotData{members: n.members, hasFSM: true, fsm: data})
	snap, err := n.ms.CreateSnapshot(n.applied, confStateOf(n.members), env)
	if err != nil {
		return fmt.Errorf("raftlog: snapshot at %d: %w", n.applied, err)
	}
	compactTo := n.applied - min(n.applied, n.cfg.SnapshotEntries/10)
	if err := n.disk.saveSnapshot(snap, compactTo); err != nil {
		return err
	}
	if first, _ := n.ms.FirstIndex(); compactTo >= first {
		if err := n.ms.Compact(compactTo); err != nil {
			return fmt.Errorf("raftlog: compact to %d: %w", compactTo, err)
		}
	}
	n.snapIndex = n.applied
	n.log.Debug("raftlog: took a snapshot", "index", n.applied, "bytes", len(env), "compacted_to", compactTo)
	return nil
}

func (n *Node) failWaiters(err error) {
	n.flushAnswers()
	for _, w := range n.unplaced {
		w.resp <- result{err: err}
	}
	for _, ws := range n.placed {
		for _, w := range ws {
			w.resp <- result{err: err}
		}
	}
	clear(n.unplaced)
	clear(n.placed)
}

// publish makes the node's state visible to Status and wakes WaitLeader.
func (n *Node) publish() {
	st := Status{
		ID:            n.cfg.ID,
		AppliedIndex:  n.applied,
		SnapshotIndex: n.snapIndex,
	}
	if self, ok := n.peer(n.cfg.ID); ok {
		st.Name = self.Name
	}
	for _, m := range n.members {
		p, _ := n.peer(m.ID)
		st.Members = append(st.Members, p)
	}
	if n.rn != nil {
		bs := n.rn.BasicStatus()
		st.Term, st.CommitIndex = bs.GetTerm(), bs.GetCommit()
		st.IsLeader = bs.RaftState == raft.StateLeader
		if p, ok := n.peer(bs.Lead); ok {
			st.Leader = p
		} else if bs.Lead != 0 {
			st.Leader = Peer{ID: bs.Lead}
		}
	}
	select {
	case <-n.stopped:
		st.IsLeader, st.Leader = false, Peer{}
	default:
		limit := time.Duration(n.cfg.ElectionTicks) * n.cfg.TickInterval
		for _, m := range st.Members {
			if t, ok := n.lastHeard[m.ID]; m.ID != n.cfg.ID && ok && time.Since(t) > limit {
				st.Unreachable = append(st.Unreachable, m)
			}
		}
	}
	n.statusMu.Lock()
	n.status = st
	close(n.statusCh)
	n.statusCh = make(chan struct{})
	n.statusMu.Unlock()
}

// Status returns the node's state as of its last Ready.
func (n *Node) Status() Status {
	st, _ := n.statusAndWake()
	return st
}

func (n *Node) statusAndWake() (Status, <-chan struct{}) {
	n.statusMu.Lock()
	defer n.statusMu.Unlock()
	return n.status, n.statusCh
}

// LeaderCh tells when this server becomes the leader (true) and when it
// stops being it (false). The channel holds the latest change only: a
// reader that falls behind sees the current state, not every change.
// Leadership ends without a value when Run returns.
func (n *Node) LeaderCh() <-chan bool { return n.leaderc }

// WaitLeader waits until some leader is known, and returns the status
// that names it; it returns ctx's error when ctx ends first.
func (n *Node) WaitLeader(ctx context.Context) (Status, error) {
	for {
		st, wake := n.statusAndWake()
		if st.Leader.ID != 0 {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("raftlog: no leader is known: %w", ctx.Err())
		case <-n.stopped:
			return n.Status(), ErrStopped
		case <-wake:
		}
	}
}

// MaxCommand caps a command: an entry travels whole in one message, which
// must fit a transport frame (DefaultMaxFrame) with room to spare.
const MaxCommand = 16 << 20

// Propose replicates cmd and returns its index once it is committed and
// applied by this server. It is served by the leader only: elsewhere it
// returns a *NotLeaderError at once. An error wrapping ErrRetry means the
// command is known not to be in the log (propose it again); any other
// error after the command was handed to raft, such as ctx ending while the
// leader cannot reach a majority, means its outcome is unknown: it may
// still commit.
func (n *Node) Propose(ctx context.Context, cmd []byte) (index uint64, err error) {
	if len(cmd) > MaxCommand {
		return 0, fmt.Errorf("raftlog: a command of %d bytes is over the %d-byte cap", len(cmd), MaxCommand)
	}
	return n.submit(ctx, &proposal{kind: propCommand, cmd: bytes.Clone(cmd)})
}

// AddMember adds a voter to the cluster and returns once the change is
// applied here. Start the new server afterwards, with Config.Join and an
// empty state dir: it receives the state from the leader. Errors are as
// for Propose; one change is under way at a time (a second gets ErrRetry).
func (n *Node) AddMember(ctx context.Context, p Peer) error {
	if p.ID == 0 || p.Name == "" || p.Addr == "" {
		return fmt.Errorf("raftlog: add member: %d (%q at %q) needs an id, a name and an address", p.ID, p.Name, p.Addr)
	}
	for _, m := range n.Status().Members {
		if m.ID == p.ID || m.Name == p.Name {
			return fmt.Errorf("raftlog: add member %d (%s): %d (%s) is a member already; ids are never reused", p.ID, p.Name, m.ID, m.Name)
		}
	}
	_, err := n.submit(ctx, &proposal{kind: propAddMember, peer: p})
	return err
}

// RemoveMember removes a voter from the cluster and returns once the
// change is applied here. A leader that removes itself steps down.
func (n *Node) RemoveMember(ctx context.Context, id uint64) error {
	st := n.Status()
	if _, ok := peerByID(st.Members, id); !ok {
		return fmt.Errorf("raftlog: remove member %d: not a member of %s", id, describePeers(st.Members))
	}
	_, err := n.submit(ctx, &proposal{kind: propRemoveMember, peer: Peer{ID: id}})
	return err
}

func (n *Node) submit(ctx context.Context, p *proposal) (uint64, error) {
	p.resp = make(chan result, 1)
	select {
	case n.propc <- p:
	case <-ctx.Done():
		return 0, fmt.Errorf("raftlog: propose: %w (the node did not take the proposal: it is not in the log)", ctx.Err())
	case <-n.stopped:
		return 0, ErrStopped
	}
	select {
	case r := <-p.resp:
		return r.index, r.err
	case <-ctx.Done():
		return 0, n.waitError(ctx)
	}
}

// waitError explains a proposal whose ctx ended before it committed.
func (n *Node) waitError(ctx context.Context) error {
	st := n.Status()
	var why string
	switch {
	case len(st.Unreachable) > 0:
		why = fmt.Sprintf("no word for an election timeout from %s", describePeers(st.Unreachable))
	case !st.IsLeader:
		why = "this server lost the leadership"
	default:
		why = "a majority did not acknowledge it in time"
	}
	return fmt.Errorf("raftlog: propose: %w: not committed yet, and the outcome is unknown (it may still commit): %s; members %s", ctx.Err(), why, describePeers(st.Members))
}

// inbox is what the transport gives the node.
type inbox struct{ n *Node }

func (i inbox) Deliver(ctx context.Context, sender string, m *raftpb.Message) error {
	select {
	case i.n.recvc <- received{sender: sender, m: m}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-i.n.stopped:
		return ErrStopped
	}
}

func (i inbox) ReportUnreachable(id uint64) { i.n.addReport(report{id: id}) }

func (i inbox) ReportSnapshot(id uint64, delivered bool) {
	i.n.addReport(report{id: id, snapshot: true, failed: !delivered})
}

func (n *Node) addReport(r report) {
	n.reportMu.Lock()
	if len(n.reports) < 4096 || r.snapshot {
		n.reports = append(n.reports, r)
	}
	n.reportMu.Unlock()
	select {
	case n.reportc <- struct{}{}:
	default:
	}
}

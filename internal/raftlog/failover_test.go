package raftlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// electionBound is how long a test waits for a new leader: elections take
// 200-400 ms with LocalConfig, and the race detector on a loaded 2-core
// machine slows everything down.
const electionBound = 10 * time.Second

func TestLeaderFailoverAndCatchUpThroughSnapshot(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	c, _ := newMemCluster(t, 3, func(cfg *Config) { cfg.SnapshotEntries = 20 })
	c.startAll()
	old := c.leader(electionBound)
	for i := range 10 {
		c.propose(old, fmt.Sprintf("before%d", i), "v")
	}
	oldApplied := c.node(old).Status().AppliedIndex
	if err := c.stop(old); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	lead := c.leader(electionBound)
	t.Logf("new leader %d after %v", lead, time.Since(start))
	if lead == old {
		t.Fatal("the stopped server is still the leader")
	}
	var last uint64
	for i := range 100 {
		last = c.propose(lead, fmt.Sprintf("after%d", i), "v")
	}
	if st := c.node(lead).Status(); st.SnapshotIndex <= oldApplied+20 {
		t.Fatalf("the leader did not compact past the old leader's log: %+v", st)
	}

	// The old leader comes back from its dir, behind the compacted log:
	// the leader sends it a snapshot.
	c.start(old)
	c.converged(electionBound, last)
	f := c.fsm(old)
	f.mu.Lock()
	restores := slices.Clone(f.restores)
	f.mu.Unlock()
	if len(restores) == 0 || restores[len(restores)-1] <= oldApplied {
		t.Errorf("the old leader restored snapshots %v, want one past %d", restores, oldApplied)
	}
	for i := range 10 {
		if _, ok := f.get(fmt.Sprintf("before%d", i)); !ok {
			t.Errorf("before%d lost", i)
		}
	}
}

func TestRestartAllKeepsAcknowledged(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	c, _ := newMemCluster(t, 3, func(cfg *Config) { cfg.SnapshotEntries = 25 })
	c.startAll()
	lead := c.leader(electionBound)
	var acked []string
	for i := range 60 {
		k := fmt.Sprintf("k%d", i)
		c.propose(lead, k, "v")
		acked = append(acked, k)
	}
	for _, id := range c.running() {
		if err := c.stop(id); err != nil {
			t.Fatal(err)
		}
	}

	// Open replays: the old leader applied every acknowledged command
	// before it acknowledged it, so its Open brings them all back.
	n, f, err := c.open(lead)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range acked {
		if _, ok := f.get(k); !ok {
			t.Errorf("after Open of the old leader: %s lost", k)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	c.startAll()
	lead = c.leader(electionBound)
	last := c.propose(lead, "after", "restart")
	c.converged(electionBound, last)
	for _, id := range c.running() {
		for _, k := range acked {
			if _, ok := c.fsm(id).get(k); !ok {
				t.Errorf("server %d: %s lost", id, k)
			}
		}
	}
}

func TestPartitionedLeader(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	c, nw := newMemCluster(t, 3, nil)
	c.startAll()
	old := c.leader(electionBound)
	for i := range 20 {
		c.propose(old, fmt.Sprintf("k%d", i), "v")
	}
	nw.Partition([]uint64{old})

	// A proposal that waits through the partition learns, once it heals,
	// that the new leader's log replaced its entry: ErrRetry, and it is
	// applied nowhere.
	longCtx, longCancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer longCancel()
	longErr := make(chan error, 1)
	go func() {
		_, err := c.node(old).Propose(longCtx, []byte("replaced=1"))
		longErr <- err
	}()

	// The minority leader cannot commit: Propose ends with its ctx and
	// names the servers it cannot hear.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := c.node(old).Propose(ctx, []byte("lost=1"))
	cancel()
	var nle *NotLeaderError
	switch {
	case errors.As(err, &nle):
		t.Logf("the old leader had stepped down already: %v", err)
	case err == nil:
		t.Fatal("a minority leader committed a proposal")
	case !errors.Is(err, context.DeadlineExceeded):
		t.Fatalf("propose on the minority leader: %v", err)
	default:
		for _, p := range c.peers {
			if p.ID != old && !strings.Contains(err.Error(), p.Name) {
				t.Errorf("the error does not name unreachable %s: %v", p.Name, err)
			}
		}
		t.Log(err)
	}
	// CheckQuorum: it steps down; the majority elects another leader.
	waitFor(t, electionBound, "the minority leader steps down", func() bool { return !c.node(old).Status().IsLeader })
	var majority []uint64
	for _, p := range c.peers {
		if p.ID != old {
			majority = append(majority, p.ID)
		}
	}
	lead := c.leader(electionBound, majority...)
	var last uint64
	for i := range 10 {
		last = c.propose(lead, fmt.Sprintf("m%d", i), "v")
	}

	nw.Heal()
	c.converged(electionBound, last)
	if err := <-longErr; errors.As(err, &nle) {
		t.Logf("the old leader had stepped down before the proposal: %v", err)
	} else if !errors.Is(err, ErrRetry) {
		t.Errorf("a proposal whose entry the new leader replaced: %v, want ErrRetry", err)
	} else {
		t.Log(err)
	}
	for _, id := range c.running() {
		f := c.fsm(id)
		for i := range 20 {
			if _, ok := f.get(fmt.Sprintf("k%d", i)); !ok {
				t.Errorf("server %d lost k%d", id, i)
			}
		}
		for _, k := range []string{"lost", "replaced"} {
			if _, ok := f.get(k); ok {
				t.Errorf("server %d applied the minority leader's proposal %s", id, k)
			}
		}
	}
}

func TestAddAndRemoveMember(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	var join bool
	c, _ := newMemCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotEntries = 20
		cfg.Join = join && cfg.ID == 4
	})
	c.startAll()
	lead := c.leader(electionBound)
	for i := range 30 {
		c.propose(lead, fmt.Sprintf("k%d", i), "v")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s4 := Peer{ID: 4, Name: "s4", Addr: "mem-4"}
	if err := c.node(lead).AddMember(ctx, Peer{ID: 2, Name: "again", Addr: "x"}); err == nil {
		t.Error("AddMember of an existing id succeeded")
	}
	if err := c.node(lead).AddMember(ctx, s4); err != nil {
		t.Fatal(err)
	}
	if m := c.node(lead).Status().Members; len(m) != 4 || m[3] != s4 {
		t.Fatalf("members after AddMember: %v", m)
	}
	c.peers = append(c.peers, s4)
	join = true
	c.start(4)
	last := c.propose(lead, "with", "four")
	c.converged(electionBound, last)
	if st := c.node(4).Status(); len(st.Members) != 4 || st.Leader.ID != lead {
		t.Errorf("the new member's status: %+v", st)
	}

	// Remove a follower other than the new one.
	var gone uint64
	for _, id := range []uint64{1, 2, 3} {
		if id != lead {
			gone = id
			break
		}
	}
	if err := c.node(lead).RemoveMember(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if err := c.stop(gone); err != nil {
		t.Fatal(err)
	}
	c.peers = slices.DeleteFunc(c.peers, func(p Peer) bool { return p.ID == gone })
	last = c.propose(lead, "with", "three")
	c.converged(electionBound, last)

	// A restart with the members of the log works; with the old list it
	// is refused, naming the members that differ.
	if err := c.stop(4); err != nil {
		t.Fatal(err)
	}
	c.start(4)
	c.converged(electionBound, last)
	if err := c.stop(4); err != nil {
		t.Fatal(err)
	}
	old := c.peers
	c.peers = append(slices.Clone(old), Peer{ID: gone, Name: fmt.Sprintf("s%d", gone), Addr: "x"})
	_, _, err := c.open(4)
	c.peers = old
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d (s%d) is in the config but not a member", gone, gone)) {
		t.Errorf("open with a removed member in Peers: %v", err)
	}
}

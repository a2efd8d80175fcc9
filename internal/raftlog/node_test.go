package raftlog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSingleServer(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	c, _ := newMemCluster(t, 1, func(cfg *Config) { cfg.SnapshotEntries = 50 })
	c.start(1)
	if lead := c.leader(5 * time.Second); lead != 1 {
		t.Fatalf("leader %d", lead)
	}
	var last uint64
	for i := range 120 {
		idx := c.propose(1, fmt.Sprintf("k%d", i), fmt.Sprint(i))
		if idx <= last {
			t.Fatalf("index %d after %d", idx, last)
		}
		last = idx
		// Propose returns after the local apply.
		if v, ok := c.fsm(1).get(fmt.Sprintf("k%d", i)); !ok || v != fmt.Sprint(i) {
			t.Fatalf("k%d = %q, %v after Propose returned", i, v, ok)
		}
	}
	if _, err := c.node(1).Propose(context.Background(), make([]byte, MaxCommand+1)); err == nil || !strings.Contains(err.Error(), "cap") {
		t.Errorf("a command over MaxCommand: %v", err)
	}
	st := c.node(1).Status()
	if st.AppliedIndex != last || st.CommitIndex < last || st.SnapshotIndex < 100 || !st.IsLeader || st.Name != "s1" || len(st.Members) != 1 {
		t.Errorf("status %+v", st)
	}
	if err := c.stop(1); err != nil {
		t.Fatal(err)
	}

	// Open replays: the snapshot, then the entries after it.
	n, f, err := c.open(1)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if got := len(f.snapshotOf()); got != 120 {
		t.Errorf("after Open: %d keys, want 120", got)
	}
	if len(f.restores) != 1 || f.applies == 0 {
		t.Errorf("after Open: restores %v, %d applies", f.restores, f.applies)
	}
	if st := n.Status(); st.AppliedIndex != last {
		t.Errorf("after Open: applied %d, want %d", st.AppliedIndex, last)
	}
}

func TestThreeServers(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	c, _ := newMemCluster(t, 3, nil)
	c.startAll()
	lead := c.leader(10 * time.Second)
	var last uint64
	for i := range 50 {
		last = c.propose(lead, fmt.Sprintf("k%d", i), "v")
	}
	c.converged(10*time.Second, last)

	// A follower refuses at once and names the leader.
	follower := lead%3 + 1
	_, err := c.node(follower).Propose(context.Background(), []byte("x=y"))
	var nle *NotLeaderError
	if !errors.As(err, &nle) {
		t.Fatalf("propose on follower %d: %v", follower, err)
	}
	want := c.peer(lead)
	if nle.LeaderID != want.ID || nle.LeaderName != want.Name || nle.LeaderAddr != want.Addr {
		t.Errorf("NotLeaderError %+v, want leader %+v", nle, want)
	}
	if !strings.Contains(err.Error(), want.Name) {
		t.Errorf("error %q does not name the leader", err)
	}
	select {
	case isLeader := <-c.node(lead).LeaderCh():
		if !isLeader {
			t.Error("LeaderCh of the leader says false")
		}
	default:
		t.Error("LeaderCh of the leader is empty")
	}
	st, err := c.node(follower).WaitLeader(context.Background())
	if err != nil || st.Leader.ID != lead || st.IsLeader {
		t.Errorf("WaitLeader on %d: %+v, %v", follower, st, err)
	}
}

// TestLossyNetwork runs a cluster on a network that loses a fifth of the
// messages and delays the rest: raft retransmits, and every server
// applies the same commands.
func TestLossyNetwork(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	c, nw := newMemCluster(t, 3, func(cfg *Config) { cfg.SnapshotEntries = 15 })
	nw.SetLoss(0.2)
	nw.SetDelay(2 * time.Millisecond)
	c.startAll()
	var last uint64
	for i := range 40 {
		for {
			lead := c.leader(electionBound)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			idx, err := c.node(lead).Propose(ctx, []byte(fmt.Sprintf("k%d=v", i)))
			cancel()
			if err == nil {
				last = idx
				break
			}
			// A lost leadership or a timed-out wait: the command may be
			// in the log already; proposing it again is harmless here.
			t.Logf("k%d: %v", i, err)
		}
	}
	nw.SetLoss(0)
	c.converged(electionBound, last)
	for i := range 40 {
		if _, ok := c.fsm(1).get(fmt.Sprintf("k%d", i)); !ok {
			t.Errorf("k%d lost", i)
		}
	}
}

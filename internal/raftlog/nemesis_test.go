package raftlog

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestNemesis runs five servers while the network is cut in random ways
// and proposers keep proposing wherever they find a leader. Afterwards:
// every acknowledged command is applied on every server, no command whose
// proposal got ErrRetry is applied anywhere, and the servers agree.
func TestNemesis(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of partitions")
	}
	t.Cleanup(func() { verifyNoLeaks(t) })
	c, nw := newMemCluster(t, 5, func(cfg *Config) { cfg.SnapshotEntries = 40 })
	c.startAll()
	c.leader(electionBound)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	var mu sync.Mutex
	acked, retried, unknown := map[string]bool{}, map[string]bool{}, 0
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("w%d-%d", w, i)
				n := c.node(anyLeader(c))
				if n == nil {
					// An election is under way: wait for one server to
					// learn its outcome.
					wctx, wcancel := context.WithTimeout(ctx, 100*time.Millisecond)
					_, _ = c.node(uint64(1 + w)).WaitLeader(wctx)
					wcancel()
					continue
				}
				pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
				_, err := n.Propose(pctx, []byte(key+"=1"))
				pcancel()
				var nle *NotLeaderError
				mu.Lock()
				switch {
				case err == nil:
					acked[key] = true
				case errors.Is(err, ErrRetry), errors.As(err, &nle):
					retried[key] = true
				default:
					unknown++
				}
				mu.Unlock()
			}
		})
	}
	rng := rand.New(rand.NewPCG(7, 7))
	ids := []uint64{1, 2, 3, 4, 5}
	for ctx.Err() == nil {
		switch rng.IntN(4) {
		case 0:
			nw.Heal()
		case 1:
			if lead := anyLeader(c); lead != 0 {
				nw.Partition([]uint64{lead})
			}
		default:
			rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
			nw.Partition(append([]uint64(nil), ids[:2]...), append([]uint64(nil), ids[2:]...))
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(100+rng.IntN(400)) * time.Millisecond):
		}
	}
	wg.Wait()
	nw.Heal()

	lead := c.leader(electionBound)
	last := c.propose(lead, "final", "1")
	c.converged(electionBound, last)
	t.Logf("acknowledged %d, refused %d, unknown %d", len(acked), len(retried), unknown)
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged")
	}
	for _, id := range c.running() {
		f := c.fsm(id)
		for k := range acked {
			if _, ok := f.get(k); !ok {
				t.Errorf("server %d lost acknowledged %s", id, k)
			}
		}
		for k := range retried {
			if _, ok := f.get(k); ok {
				t.Errorf("server %d applied %s, whose proposal got ErrRetry", id, k)
			}
		}
	}
}

// anyLeader returns a server that believes it leads, or 0.
func anyLeader(c *cluster) uint64 {
	for _, id := range c.running() {
		if c.node(id).Status().IsLeader {
			return id
		}
	}
	return 0
}

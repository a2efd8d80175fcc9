package raftlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// kvFSM is the state machine of the tests: commands are "key=value".
type kvFSM struct {
	mu          sync.Mutex
	data        map[string]string
	last        uint64
	applies     int
	restores    []uint64 // the indexes of the snapshots restored
	bad         []string // broken invariants, checked by the tests
	failRestore error
}

func newKV() *kvFSM { return &kvFSM{data: map[string]string{}} }

func (f *kvFSM) Apply(index uint64, cmd []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if index <= f.last {
		f.bad = append(f.bad, fmt.Sprintf("apply %d after %d", index, f.last))
	}
	f.last = index
	f.applies++
	k, v, ok := strings.Cut(string(cmd), "=")
	if !ok {
		return // refused as data
	}
	f.data[k] = v
}

type kvSnap struct {
	Data map[string]string
	Last uint64
}

func (f *kvFSM) Snapshot() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return json.Marshal(kvSnap{f.data, f.last})
}

func (f *kvFSM) Restore(index uint64, b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failRestore != nil {
		return f.failRestore
	}
	var s kvSnap
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s.Last > index {
		f.bad = append(f.bad, fmt.Sprintf("snapshot at %d holds applies up to %d", index, s.Last))
	}
	f.data, f.last = s.Data, index
	f.restores = append(f.restores, index)
	return nil
}

func (f *kvFSM) get(k string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.data[k]
	return v, ok
}

func (f *kvFSM) snapshotOf() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.data)
}

func (f *kvFSM) check(t testing.TB) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.bad {
		t.Error(b)
	}
}

// verifyNoLeaks fails t if goroutines are left after its cleanups. QUIC
// closes its UDP transports in the background after a connection closes,
// which can outlast goleak's own retries on a loaded machine.
func verifyNoLeaks(t testing.TB) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); goleak.Find() != nil && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	goleak.VerifyNone(t)
}

// waitFor waits until cond holds, checking it every few milliseconds, and
// fails the test with what when d passes first.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testLogger logs to the test's output when RAFTLOG_LOG is set.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("RAFTLOG_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// cluster is N servers of one cluster in this process, each with its own
// state dir, on a transport that newTransport makes.
type cluster struct {
	t            testing.TB
	peers        []Peer
	dir          string
	tune         func(*Config)
	newTransport func(Peer) Transport

	mu    sync.Mutex
	nodes map[uint64]*Node
	fsms  map[uint64]*kvFSM
	stops map[uint64]func() error
}

func newMemCluster(t testing.TB, n int, tune func(*Config)) (*cluster, *MemNetwork) {
	nw := NewMemNetwork()
	var peers []Peer
	for i := 1; i <= n; i++ {
		peers = append(peers, Peer{ID: uint64(i), Name: fmt.Sprintf("s%d", i), Addr: fmt.Sprintf("mem-%d", i)})
	}
	c := newCluster(t, peers, tune, func(Peer) Transport { return nw.Transport() })
	return c, nw
}

func newCluster(t testing.TB, peers []Peer, tune func(*Config), newTransport func(Peer) Transport) *cluster {
	c := &cluster{
		t: t, peers: peers, dir: t.TempDir(), tune: tune, newTransport: newTransport,
		nodes: map[uint64]*Node{}, fsms: map[uint64]*kvFSM{}, stops: map[uint64]func() error{},
	}
	t.Cleanup(c.stopAll)
	return c
}

func (c *cluster) config(p Peer) Config {
	cfg := LocalConfig()
	cfg.ID, cfg.Peers, cfg.ClusterID = p.ID, c.peers, "test-cluster"
	cfg.Dir = filepath.Join(c.dir, p.Name)
	cfg.Transport = c.newTransport(p)
	cfg.Logger = testLogger(c.t)
	if c.tune != nil {
		c.tune(&cfg)
	}
	return cfg
}

func (c *cluster) peer(id uint64) Peer {
	p, ok := peerByID(c.peers, id)
	if !ok {
		c.t.Fatalf("no server %d", id)
	}
	return p
}

// open opens server id's state dir with a fresh FSM.
func (c *cluster) open(id uint64) (*Node, *kvFSM, error) {
	f := newKV()
	cfg := c.config(c.peer(id))
	n, err := Open(cfg, f)
	if closer, ok := cfg.Transport.(interface{ Close() error }); ok && err != nil {
		closer.Close()
	}
	return n, f, err
}

// start opens server id and runs it until stop.
func (c *cluster) start(id uint64) *Node {
	c.t.Helper()
	n, f, err := c.open(id)
	if err != nil {
		c.t.Fatalf("open %d: %v", id, err)
	}
	c.run(id, n, f)
	return n
}

func (c *cluster) run(id uint64, n *Node, f *kvFSM) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes[id], c.fsms[id] = n, f
	c.stops[id] = func() error { cancel(); return <-done }
}

func (c *cluster) startAll() {
	for _, p := range c.peers {
		c.start(p.ID)
	}
}

// stop stops server id and returns what its Run returned.
func (c *cluster) stop(id uint64) error {
	c.mu.Lock()
	stop := c.stops[id]
	delete(c.stops, id)
	delete(c.nodes, id)
	c.mu.Unlock()
	if stop == nil {
		return nil
	}
	return stop()
}

func (c *cluster) stopAll() {
	for _, p := range c.peers {
		if err := c.stop(p.ID); err != nil {
			c.t.Errorf("server %d: Run: %v", p.ID, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.fsms {
		f.check(c.t)
	}
}

func (c *cluster) node(id uint64) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

func (c *cluster) fsm(id uint64) *kvFSM {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fsms[id]
}

func (c *cluster) running() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []uint64
	for id := range c.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// leader waits until the running servers of ids (all running ones when
// nil) agree on a leader among them, and returns its id.
func (c *cluster) leader(d time.Duration, ids ...uint64) uint64 {
	c.t.Helper()
	if ids == nil {
		ids = c.running()
	}
	var lead uint64
	waitFor(c.t, d, fmt.Sprintf("servers %v agree on a leader", ids), func() bool {
		lead = 0
		for _, id := range ids {
			st := c.node(id).Status()
			if st.Leader.ID == 0 || (lead != 0 && st.Leader.ID != lead) || !slices.Contains(ids, st.Leader.ID) {
				return false
			}
			lead = st.Leader.ID
		}
		return c.node(lead).Status().IsLeader
	})
	return lead
}

// propose proposes key=value on server id until it is committed,
// retrying on ErrRetry, and returns its index.
func (c *cluster) propose(id uint64, key, value string) uint64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		i, err := c.node(id).Propose(ctx, []byte(key+"="+value))
		if errors.Is(err, ErrRetry) {
			continue
		}
		if err != nil {
			c.t.Fatalf("propose %s=%s on %d: %v", key, value, id, err)
		}
		return i
	}
}

// converged waits until every running server has applied up to index
// and their FSMs are equal.
func (c *cluster) converged(d time.Duration, index uint64) {
	c.t.Helper()
	waitFor(c.t, d, fmt.Sprintf("running servers apply up to %d with equal states", index), func() bool {
		var first map[string]string
		for i, id := range c.running() {
			if c.node(id).Status().AppliedIndex < index {
				return false
			}
			s := c.fsm(id).snapshotOf()
			if i == 0 {
				first = s
			} else if !equalMaps(first, s) {
				return false
			}
		}
		return true
	})
}

func equalMaps(a, b map[string]string) bool { return maps.Equal(a, b) }

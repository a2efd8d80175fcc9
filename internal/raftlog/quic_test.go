package raftlog

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/certs"
	"github.com/wasmgrid/wasmgrid/shuffle/quicnet"
)

// newQUICCluster is n servers on loopback QUIC, with certificates from a
// throwaway authority, each named after its server.
func newQUICCluster(t testing.TB, n int, tune func(*Config)) *cluster {
	return newQUICClusterNamed(t, n, tune, func(name string) string { return name })
}

// newQUICClusterNamed is newQUICCluster with the certificate of server
// name issued for certName(name).
func newQUICClusterNamed(t testing.TB, n int, tune func(*Config), certName func(string) string) *cluster {
	t.Helper()
	ca, err := certs.NewCA("raftlog test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tlsFor := map[string]QUICConfig{}
	ready := map[uint64]*QUICTransport{}
	var peers []Peer
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("s%d", i)
		cert, err := ca.Issue(certName(name), []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		srv, cli, err := certs.Mutual(ca.CertPEM, cert, quicnet.ControlALPN)
		if err != nil {
			t.Fatal(err)
		}
		tlsFor[name] = QUICConfig{ServerTLS: srv, ClientTLS: cli, IdleTimeout: 5 * time.Second, Logger: testLogger(t)}
		tr, err := ListenQUIC("127.0.0.1:0", tlsFor[name])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		ready[uint64(i)] = tr
		peers = append(peers, Peer{ID: uint64(i), Name: name, Addr: tr.Addr()})
	}
	return newCluster(t, peers, tune, func(p Peer) Transport {
		if tr := ready[p.ID]; tr != nil {
			delete(ready, p.ID)
			return tr
		}
		// A restart listens on the same address again.
		tr, err := ListenQUIC(p.Addr, tlsFor[p.Name])
		if err != nil {
			t.Fatalf("listen again on %s: %v", p.Addr, err)
		}
		return tr
	})
}

func TestQUICLeaderFailover(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	c := newQUICCluster(t, 3, func(cfg *Config) { cfg.SnapshotEntries = 30 })
	c.startAll()
	old := c.leader(electionBound)
	for i := range 20 {
		c.propose(old, fmt.Sprintf("before%d", i), "v")
	}
	if err := c.stop(old); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	lead := c.leader(electionBound)
	t.Logf("new leader %d after %v", lead, time.Since(start))
	var last uint64
	for i := range 80 {
		last = c.propose(lead, fmt.Sprintf("after%d", i), "v")
	}
	c.start(old)
	c.converged(electionBound, last)
	for _, id := range c.running() {
		for i := range 20 {
			if _, ok := c.fsm(id).get(fmt.Sprintf("before%d", i)); !ok {
				t.Errorf("server %d lost before%d", id, i)
			}
		}
	}
}

// TestQUICImpostor gives server 2 a certificate of the cluster's
// authority under another name: the others neither send to it (it is not
// the member they dial) nor take its messages (they are not from the
// member its certificate names), and carry on as two of three.
func TestQUICImpostor(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	c := newQUICClusterNamed(t, 3, nil, func(name string) string {
		if name == "s2" {
			return "impostor"
		}
		return name
	})
	c.startAll()
	lead := c.leader(electionBound, 1, 3)
	var last uint64
	for i := range 10 {
		last = c.propose(lead, fmt.Sprintf("k%d", i), "v")
	}
	waitFor(t, electionBound, "servers 1 and 3 apply everything", func() bool {
		return c.node(1).Status().AppliedIndex >= last && c.node(3).Status().AppliedIndex >= last
	})
	if st := c.node(2).Status(); st.AppliedIndex > 1 || st.Leader.ID != 0 {
		t.Errorf("the impostor took part: %+v", st)
	}
}

// TestQUICNoFDLeak checks that stopped servers leave no file descriptor
// open: neither raft.db nor a UDP socket.
func TestQUICNoFDLeak(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	before := openFDs(t)
	c := newQUICCluster(t, 3, nil)
	c.startAll()
	c.propose(c.leader(electionBound), "k", "v")
	c.stopAll()
	// quic-go closes a dialled connection's socket in the background.
	waitFor(t, 10*time.Second, fmt.Sprintf("open descriptors back to %d", before), func() bool { return openFDs(t) <= before })
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(entries)
}

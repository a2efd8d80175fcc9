package quicnet

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/shuffle"
)

// udpProxy relays datagrams between its clients and a server, with one
// upstream socket per client address, as a NAT does. Frozen, it drops
// what the server sends: a server that never answers, as a process stopped
// with SIGSTOP does (its sockets stay open and nothing closes its
// connections, so only an idle timeout would end them).
type udpProxy struct {
	pc     net.PacketConn
	server *net.UDPAddr
	frozen atomic.Bool

	ctx context.Context
	wg  sync.WaitGroup // the relays
	mu  sync.Mutex     // protects ups
	ups map[string]*net.UDPConn
}

// startProxy relays to server until the test ends.
func startProxy(t *testing.T, server string) *udpProxy {
	t.Helper()
	sa, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &udpProxy{pc: pc, server: sa, ctx: ctx, ups: map[string]*net.UDPConn{}}
	// The relays stop with ctx; closing the sockets ends their reads.
	t.Cleanup(func() {
		cancel()
		_ = pc.Close()
		p.mu.Lock()
		for _, up := range p.ups {
			_ = up.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	p.wg.Go(p.fromClients)
	return p
}

func (p *udpProxy) addr() string { return p.pc.LocalAddr().String() }

// fromClients relays the clients' datagrams to the server, each client
// through its own upstream socket, until the proxy stops.
func (p *udpProxy) fromClients() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := p.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		up := p.ups[from.String()]
		if up == nil && p.ctx.Err() == nil {
			if up, err = net.DialUDP("udp", nil, p.server); err != nil {
				p.mu.Unlock()
				continue
			}
			p.ups[from.String()] = up
			p.wg.Go(func() { p.toClient(up, from) })
		}
		p.mu.Unlock()
		if up != nil {
			_, _ = up.Write(buf[:n])
		}
	}
}

// toClient relays the server's datagrams to client, unless frozen.
func (p *udpProxy) toClient(up *net.UDPConn, client net.Addr) {
	buf := make([]byte, 64<<10)
	for {
		n, err := up.Read(buf)
		if errors.Is(err, net.ErrClosed) || p.ctx.Err() != nil {
			return
		}
		if err != nil || p.frozen.Load() {
			continue // an ICMP error, or a frozen server's answer
		}
		_, _ = p.pc.WriteTo(buf[:n], client)
	}
}

// TestInterruptFrozenServer stops fetches from a block server that no
// longer answers: one waiting for its answer and one queued behind it for
// the only slot both fail at once with a FetchError naming the address
// and wrapping ErrInterrupted, where they would otherwise have waited for
// the idle timeout (ten minutes here: a test that hangs says Interrupt
// did nothing). The server then answers again at the same address, and a
// later fetch from it succeeds on a new connection.
func TestInterruptFrozenServer(t *testing.T) {
	asked := make(chan struct{}, 16) // a request reached the server
	t.Cleanup(func() { verifyNoLeaks(t) })
	h := startHarnessAuth(t, FetcherConfig{MaxConcurrent: 1, Timeout: 10 * time.Minute}, func(job, token string) bool {
		select {
		case asked <- struct{}{}:
		default:
		}
		return token == testToken
	})
	t.Cleanup(h.close)
	proxy := startProxy(t, h.addr)
	addr := proxy.addr()
	queued := make(chan string, 16)
	h.f.testHookQueued = func(a string) { queued <- a }

	rng := rand.New(rand.NewPCG(9, 10))
	id := shuffle.MapOutputID{ShuffleID: 11, MapIndex: 1, Attempt: 1}
	recs := randRecords(rng, 500, 100, "i")
	h.write(testJob, id, 1, recs)
	reqs := []BlockReq{{ID: id, Partition: 0}}
	fetch := func() ([]kv, error) {
		rs, err := h.f.OpenMany(context.Background(), addr, testJob, testToken, reqs)
		if err != nil {
			return nil, err
		}
		defer closeAll(rs)
		return readAll(rs[0])
	}
	// A first fetch through the proxy: the connection is up and cached.
	if got, err := fetch(); err != nil {
		t.Fatal(err)
	} else {
		equalRecords(t, "before the freeze", got, sortByKey(recs))
	}
	<-asked

	proxy.frozen.Store(true)
	errs := make(chan error, 2)
	go func() { _, err := fetch(); errs <- err }()
	<-asked // the first fetch holds the slot and waits for its answer
	go func() { _, err := fetch(); errs <- err }()
	if a := <-queued; a != addr { // the second waits for the slot
		t.Fatalf("a fetch from %s queued", a)
	}
	h.f.Interrupt(addr)
	for range 2 {
		err := <-errs
		fetchErr(t, err, id, 0, addr)
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("interrupted fetch: %v does not wrap ErrInterrupted", err)
		}
		t.Logf("interrupted: %v", err)
	}

	// The server is back at the same address.
	proxy.frozen.Store(false)
	got, err := fetch()
	if err != nil {
		t.Fatalf("a fetch after the interruption: %v", err)
	}
	equalRecords(t, "after the interruption", got, sortByKey(recs))
	h.f.mu.Lock()
	conns, lives := len(h.f.conns), len(h.f.lives)
	h.f.mu.Unlock()
	if conns != 1 || lives != 1 {
		t.Errorf("%d connections and %d watched addresses after the new fetch, want 1 and 1", conns, lives)
	}
}

// TestInterruptStreamedBlock interrupts the reading of a large block,
// streamed from a server that stopped answering halfway: the reader fails
// with a FetchError wrapping ErrInterrupted.
func TestInterruptStreamedBlock(t *testing.T) {
	h := newHarness(t, FetcherConfig{Timeout: 10 * time.Minute})
	proxy := startProxy(t, h.addr)
	addr := proxy.addr()
	rng := rand.New(rand.NewPCG(11, 12))
	id := shuffle.MapOutputID{ShuffleID: 12, MapIndex: 3, Attempt: 1}
	h.write(testJob, id, 1, randRecords(rng, 400, 64<<10, "s")) // ~13 MB, incompressible
	r, err := h.f.Open(context.Background(), addr, testJob, testToken, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() {
		t.Fatalf("no first record: %v", r.Err())
	}
	proxy.frozen.Store(true)
	h.f.Interrupt(addr)
	n := 1
	for r.Next() {
		n++
	}
	if r.Err() == nil {
		t.Fatalf("clean end after %d of 400 records", n)
	}
	fetchErr(t, r.Err(), id, 0, addr)
	if !errors.Is(r.Err(), ErrInterrupted) {
		t.Fatalf("after %d records: %v does not wrap ErrInterrupted", n, r.Err())
	}
	t.Logf("read %d records, then: %v", n, r.Err())
}

// TestInterruptDial interrupts a fetch whose dial waits on a socket that
// swallows every datagram (a handshake that never ends).
func TestInterruptDial(t *testing.T) {
	defer verifyNoLeaks(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	got := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer pc.Close() // ends the reader below
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			select {
			case got <- struct{}{}:
			default:
			}
		}
	})
	addr := pc.LocalAddr().String()
	_, cTLS, err := EphemeralTLS()
	if err != nil {
		t.Fatal(err)
	}
	f := NewFetcher(FetcherConfig{TLS: cTLS, Timeout: 10 * time.Minute})
	defer f.Close()
	id := shuffle.MapOutputID{ShuffleID: 13, MapIndex: 2}
	errc := make(chan error, 1)
	go func() {
		_, err := f.Open(context.Background(), addr, testJob, testToken, id, 0)
		errc <- err
	}()
	<-got // the handshake's first packet: the fetch is dialing
	f.Interrupt(addr)
	err = <-errc
	fetchErr(t, err, id, 0, addr)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted dial: %v does not wrap ErrInterrupted", err)
	}
	t.Logf("interrupted dial: %v", err)
}

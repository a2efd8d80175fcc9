package raftlog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/wasmgrid/wasmgrid/internal/certs"
	"github.com/wasmgrid/wasmgrid/shuffle/quicnet"
)

// QUICConfig configures a QUIC transport. A zero field means its default.
type QUICConfig struct {
	// ServerTLS is the listener's configuration: it must require client
	// certificates from the cluster's authority (certs.Mutual).
	ServerTLS *tls.Config
	// ClientTLS presents this server's certificate and accepts only the
	// cluster's authority (certs.Mutual).
	ClientTLS *tls.Config
	// IdleTimeout closes a connection that has been silent this long
	// (default 10s; raft's heartbeats keep a live one busy).
	IdleTimeout time.Duration
	// QueueLen is how many messages wait for one peer before more are
	// dropped (default 1024).
	QueueLen int
	// MaxFrame caps a message on the wire, a MsgSnap with the whole
	// snapshot included (default DefaultMaxFrame).
	MaxFrame int
	// Logger receives the transport's logs (nil: discard).
	Logger *slog.Logger
}

// Redial back-off and the time a frame may take to write.
const (
	minBackoff   = 50 * time.Millisecond
	maxBackoff   = 2 * time.Second
	dialTimeout  = 5 * time.Second
	writeTimeout = 10 * time.Second
)

// QUICTransport carries raft messages over QUIC with mutual TLS, through
// the project's QUIC layer (shuffle/quicnet). Each server keeps one
// connection and one stream to each peer for what it sends, and accepts
// the peers' connections for what it receives; a sender is known by its
// certificate's common name. See docs/raftlog.md, "Transport".
type QUICTransport struct {
	cfg QUICConfig
	log *slog.Logger
	ln  *quicnet.ControlListener

	mu     sync.Mutex
	peers  map[uint64]*quicPeer // protected by mu
	ctx    context.Context      // protected by mu; set while Run runs
	inbox  Inbox                // protected by mu; set while Run runs
	early  []report             // protected by mu; reports from before Run
	closed bool                 // protected by mu
	wg     sync.WaitGroup
}

type quicPeer struct {
	peer Peer // protected by QUICTransport.mu
	q    chan outFrame
}

type outFrame struct {
	b    []byte // length and message
	snap bool
}

// ListenQUIC listens on addr (host:port; port 0 picks one) for the peers'
// connections. It starts nothing: Run serves the listener, and Close
// releases a transport that never runs.
func ListenQUIC(addr string, cfg QUICConfig) (*QUICTransport, error) {
	if cfg.ServerTLS == nil || cfg.ClientTLS == nil {
		return nil, errors.New("raftlog: a QUIC transport needs ServerTLS and ClientTLS")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Second
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 1024
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := quicnet.ListenControl(addr, cfg.ServerTLS, cfg.IdleTimeout)
	if err != nil {
		return nil, fmt.Errorf("raftlog: %w", err)
	}
	return &QUICTransport{cfg: cfg, log: cfg.Logger, ln: ln, peers: map[uint64]*quicPeer{}}, nil
}

// Addr is the address the transport listens on.
func (t *QUICTransport) Addr() string { return t.ln.Addr().String() }

// Close releases the listener of a transport whose Run was never called.
func (t *QUICTransport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx != nil || t.closed {
		return nil
	}
	t.closed = true
	return t.ln.Close()
}

// Run serves the listener and runs one sender per peer until ctx ends,
// then closes every connection and waits for its goroutines.
func (t *QUICTransport) Run(ctx context.Context, self Peer, inbox Inbox) error {
	t.mu.Lock()
	if t.ctx != nil || t.closed {
		t.mu.Unlock()
		return errors.New("raftlog: the QUIC transport ran already")
	}
	t.ctx, t.inbox = ctx, inbox
	for _, p := range t.peers {
		t.startSender(p)
	}
	early := t.early
	t.early = nil
	t.mu.Unlock()
	for _, r := range early {
		deliverReport(inbox, r)
	}
	t.wg.Go(func() { t.accept(ctx) })
	<-ctx.Done()
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	err := t.ln.Close()
	t.wg.Wait()
	return err
}

func deliverReport(inbox Inbox, r report) {
	if r.snapshot {
		inbox.ReportSnapshot(r.id, !r.failed)
	} else {
		inbox.ReportUnreachable(r.id)
	}
}

func (t *QUICTransport) accept(ctx context.Context) {
	for {
		conn, err := t.ln.Accept(ctx)
		if err != nil {
			return
		}
		t.wg.Go(func() { t.serve(ctx, conn) })
	}
}

// serve reads the streams a peer opens on its connection.
func (t *QUICTransport) serve(ctx context.Context, conn *quicnet.ControlConn) {
	name := certs.PeerName(conn.TLS())
	stop := context.AfterFunc(ctx, func() { _ = conn.Close("shutting down") })
	defer stop()
	defer func() { _ = conn.Close("done") }()
	for {
		s, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		t.wg.Go(func() { t.read(ctx, name, s) })
	}
}

func (t *QUICTransport) read(ctx context.Context, name string, s quicnet.Stream) {
	defer s.CancelRead()
	t.mu.Lock()
	inbox := t.inbox
	t.mu.Unlock()
	var buf []byte
	for {
		frame, err := readFrame(s, buf, t.cfg.MaxFrame)
		if err != nil {
			if err != io.EOF && ctx.Err() == nil {
				t.log.Debug("raftlog: a stream from a peer ended", "peer", name, "err", err)
			}
			return
		}
		buf = frame
		m := &raftpb.Message{}
		if err := proto.Unmarshal(frame, m); err != nil {
			t.log.Warn("raftlog: a peer sent a message that does not decode; closing its stream", "peer", name, "err", err)
			return
		}
		if inbox.Deliver(ctx, name, m) != nil {
			return
		}
	}
}

// Send queues msgs for to. A message over MaxFrame, or one that finds the
// peer's queue full, is dropped (and reported, so that raft probes the
// peer, or sends a snapshot again).
func (t *QUICTransport) Send(to Peer, msgs []*raftpb.Message) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	p := t.peers[to.ID]
	if p == nil {
		p = &quicPeer{q: make(chan outFrame, t.cfg.QueueLen)}
		t.peers[to.ID] = p
		if t.ctx != nil {
			t.startSender(p)
		}
	}
	p.peer = to
	t.mu.Unlock()
	for _, m := range msgs {
		snap := m.GetType() == raftpb.MsgSnap
		body, err := proto.Marshal(m)
		if err != nil {
			panic(fmt.Sprintf("raftlog: marshal a raft message: %v", err))
		}
		if len(body) > t.cfg.MaxFrame {
			t.log.Error("raftlog: a message is over the frame cap and is dropped; a snapshot this large needs a larger QUICConfig.MaxFrame", "to", to.ID, "type", m.GetType(), "bytes", len(body), "cap", t.cfg.MaxFrame)
			t.report(report{id: to.ID, snapshot: snap, failed: true})
			continue
		}
		select {
		case p.q <- outFrame{b: appendFrame(make([]byte, 0, 4+len(body)), body), snap: snap}:
		default:
			t.report(report{id: to.ID, snapshot: snap, failed: true})
		}
	}
}

// report tells the inbox, or keeps the report for Run.
func (t *QUICTransport) report(r report) {
	t.mu.Lock()
	inbox := t.inbox
	if inbox == nil {
		t.early = append(t.early, r)
	}
	t.mu.Unlock()
	if inbox != nil {
		deliverReport(inbox, r)
	}
}

// startSender starts p's sender; t.mu is held.
func (t *QUICTransport) startSender(p *quicPeer) {
	ctx := t.ctx
	t.wg.Go(func() { t.sender(ctx, p) })
}

// sender keeps a connection to one peer and writes its queue to it,
// redialling with back-off when the connection breaks. While it cannot
// reach the peer it drops what is queued: raft retransmits.
func (t *QUICTransport) sender(ctx context.Context, p *quicPeer) {
	backoff := minBackoff
	for ctx.Err() == nil {
		t.mu.Lock()
		peer := p.peer
		t.mu.Unlock()
		conn, s, err := t.dial(ctx, peer)
		if err == nil {
			backoff = minBackoff
			err = t.pump(ctx, conn, s, p)
			_ = conn.Close("reconnecting")
		}
		if ctx.Err() != nil {
			break
		}
		t.log.Debug("raftlog: cannot send to a peer; retrying", "peer", peer.ID, "addr", peer.Addr, "err", err, "backoff", backoff)
		t.drop(p, peer.ID)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
	t.drop(p, 0)
}

func (t *QUICTransport) dial(ctx context.Context, peer Peer) (*quicnet.ControlConn, quicnet.Stream, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, err := quicnet.DialControl(dctx, peer.Addr, t.cfg.ClientTLS, t.cfg.IdleTimeout)
	if err != nil {
		return nil, nil, err
	}
	if got := certs.PeerName(conn.TLS()); got != peer.Name {
		_ = conn.Close("wrong server")
		return nil, nil, fmt.Errorf("the server at %s presented a certificate for %q, not for member %d (%s)", peer.Addr, got, peer.ID, peer.Name)
	}
	s, err := conn.OpenStream(dctx)
	if err != nil {
		_ = conn.Close("no stream")
		return nil, nil, err
	}
	return conn, s, nil
}

func (t *QUICTransport) pump(ctx context.Context, conn *quicnet.ControlConn, s quicnet.Stream, p *quicPeer) error {
	for {
		var f outFrame
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-conn.Done():
			return errors.New("the connection closed")
		case f = <-p.q:
		}
		_ = s.SetDeadline(time.Now().Add(writeTimeout))
		_, err := s.Write(f.b)
		if f.snap {
			t.mu.Lock()
			id := p.peer.ID
			t.mu.Unlock()
			t.report(report{id: id, snapshot: true, failed: err != nil})
		}
		if err != nil {
			return err
		}
	}
}

// drop empties p's queue, reporting its snapshots as failed, and reports
// the peer unreachable (unless id is 0).
func (t *QUICTransport) drop(p *quicPeer, id uint64) {
	t.mu.Lock()
	pid := p.peer.ID
	t.mu.Unlock()
	for {
		select {
		case f := <-p.q:
			if f.snap {
				t.report(report{id: pid, snapshot: true, failed: true})
			}
		default:
			if id != 0 {
				t.report(report{id: id})
			}
			return
		}
	}
}

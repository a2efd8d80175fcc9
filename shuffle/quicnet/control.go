package quicnet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/quic-go/quic-go"
)

// ControlALPN is the ALPN of the coordinator-agent control plane.
const ControlALPN = "wasmgrid-control/1"

// Control connections carry the control plane: long-lived, mutually
// authenticated QUIC connections with bidirectional streams. The limits
// bound what one peer can make the other buffer.
const (
	controlMaxStreams   = 64
	controlStreamWindow = 8 << 20
	controlConnWindow   = 32 << 20
)

func controlQUIC(idle time.Duration) *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           idle,
		MaxIdleTimeout:                 idle,
		KeepAlivePeriod:                idle / 4,
		MaxIncomingStreams:             controlMaxStreams,
		MaxIncomingUniStreams:          -1,
		InitialStreamReceiveWindow:     1 << 20,
		MaxStreamReceiveWindow:         controlStreamWindow,
		InitialConnectionReceiveWindow: 4 << 20,
		MaxConnectionReceiveWindow:     controlConnWindow,
		Allow0RTT:                      false,
	}
}

// ControlListener accepts control connections.
type ControlListener struct{ ln *quic.Listener }

// ListenControl listens for control connections on addr (host:port; port
// 0 picks one). tlsConf must require client certificates.
func ListenControl(addr string, tlsConf *tls.Config, idle time.Duration) (*ControlListener, error) {
	if tlsConf == nil || tlsConf.ClientAuth != tls.RequireAndVerifyClientCert {
		return nil, errors.New("quicnet: a control listener needs a TLS config that requires client certificates")
	}
	c := tlsConf.Clone()
	c.MinVersion, c.NextProtos = tls.VersionTLS13, []string{ControlALPN}
	ln, err := quic.ListenAddr(addr, c, controlQUIC(idle))
	if err != nil {
		return nil, fmt.Errorf("quicnet: listen for control connections on %s: %w", addr, err)
	}
	return &ControlListener{ln: ln}, nil
}

// Addr is the address the listener listens on.
func (l *ControlListener) Addr() net.Addr { return l.ln.Addr() }

// Accept waits for the next connection.
func (l *ControlListener) Accept(ctx context.Context) (*ControlConn, error) {
	c, err := l.ln.Accept(ctx)
	if err != nil {
		return nil, err
	}
	return &ControlConn{c: c}, nil
}

// Close stops listening; accepted connections stay open.
func (l *ControlListener) Close() error { return l.ln.Close() }

// DialControl connects to a control listener, presenting the node
// certificate in tlsConf.
func DialControl(ctx context.Context, addr string, tlsConf *tls.Config, idle time.Duration) (*ControlConn, error) {
	c := tlsConf.Clone()
	c.MinVersion, c.NextProtos = tls.VersionTLS13, []string{ControlALPN}
	conn, err := quic.DialAddr(ctx, addr, c, controlQUIC(idle))
	if err != nil {
		return nil, fmt.Errorf("quicnet: dial control %s: %w", addr, err)
	}
	return &ControlConn{c: conn}, nil
}

// ControlConn is one control connection.
type ControlConn struct{ c *quic.Conn }

// Stream is a bidirectional control stream. Close ends the writing side;
// CancelRead stops reading.
type Stream interface {
	io.ReadWriteCloser
	SetDeadline(time.Time) error
	CancelRead()
}

type controlStream struct{ *quic.Stream }

func (s controlStream) CancelRead() { s.Stream.CancelRead(quic.StreamErrorCode(codeClosed)) }

// OpenStream opens a stream to the peer.
func (c *ControlConn) OpenStream(ctx context.Context) (Stream, error) {
	s, err := c.c.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return controlStream{s}, nil
}

// AcceptStream waits for the peer to open a stream.
func (c *ControlConn) AcceptStream(ctx context.Context) (Stream, error) {
	s, err := c.c.AcceptStream(ctx)
	if err != nil {
		return nil, err
	}
	return controlStream{s}, nil
}

// TLS is the connection's TLS state: the peer's certificate names it.
func (c *ControlConn) TLS() tls.ConnectionState { return c.c.ConnectionState().TLS }

// RemoteAddr is the peer's address.
func (c *ControlConn) RemoteAddr() net.Addr { return c.c.RemoteAddr() }

// Done is closed when the connection ends.
func (c *ControlConn) Done() <-chan struct{} { return c.c.Context().Done() }

// Close closes the connection with a reason the peer sees.
func (c *ControlConn) Close(reason string) error {
	return c.c.CloseWithError(codeClosed, reason)
}

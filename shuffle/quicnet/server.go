package quicnet

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wasmgrid/wasmgrid/shuffle"
)

// ServerConfig configures a Server. A zero field means its default.
type ServerConfig struct {
	Addr       string      // UDP address to listen on; "127.0.0.1:0" picks a port
	TLS        *tls.Config // server certificate; TLS 1.3 only (MinVersion is raised)
	Dir        string      // root: one subdirectory per job, holding its map outputs
	Authorize  func(job, token string) bool
	MaxStreams int // concurrent streams per connection; default 64
	// RequestTimeout bounds how long the server waits for a request header
	// and, while it sends a block, for the client to accept more bytes;
	// default 30s.
	RequestTimeout time.Duration
	Logger         *slog.Logger // nil: discard
}

const (
	defaultMaxStreams = 64
	defaultTimeout    = 30 * time.Second
	// Application error codes.
	codeShutdown quic.ApplicationErrorCode = 1 // the server is stopping
	codeClosed   quic.ApplicationErrorCode = 2 // the fetcher is closing
	codeLost     quic.ApplicationErrorCode = 3 // the fetcher was told the server is lost
	codeCancel   quic.StreamErrorCode      = 1 // the reader gave up on a stream
)

// Server serves the shuffle blocks under a directory tree:
// Dir/<job>/shuffle_<s>_<m>_<a>.{data,index}.
type Server struct {
	cfg ServerConfig
	ln  *quic.Listener

	streams    atomic.Int64 // open streams, for tests
	maxStreams atomic.Int64 // highest value of streams seen, for tests
}

// NewServer checks cfg and listens on cfg.Addr, so Addr is known; it starts
// no goroutine of its own (quic-go's socket reader runs until Run returns).
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.TLS == nil {
		return nil, errors.New("quicnet: server needs a TLS config")
	}
	if cfg.Dir == "" {
		return nil, errors.New("quicnet: server needs a directory")
	}
	if cfg.Authorize == nil {
		return nil, errors.New("quicnet: server needs an Authorize function")
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = defaultMaxStreams
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = defaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.TLS = tlsConfig(cfg.TLS)
	ln, err := quic.ListenAddr(cfg.Addr, cfg.TLS, &quic.Config{
		MaxIncomingStreams:    int64(cfg.MaxStreams),
		MaxIncomingUniStreams: -1, // none: the protocol only uses bidirectional streams
		Allow0RTT:             false,
		MaxIdleTimeout:        cfg.RequestTimeout,
		KeepAlivePeriod:       cfg.RequestTimeout / 3,
	})
	if err != nil {
		return nil, fmt.Errorf("quicnet: listen: %w", err)
	}
	return &Server{cfg: cfg, ln: ln}, nil
}

// tlsConfig returns a copy of c restricted to TLS 1.3 with the protocol's ALPN.
func tlsConfig(c *tls.Config) *tls.Config {
	c = c.Clone()
	c.MinVersion = tls.VersionTLS13
	c.NextProtos = []string{alpn}
	return c
}

const alpn = "wasmgrid-blocks/1"

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx ends, then closes the listener and every connection,
// waits for every goroutine it started, and returns nil. It must be called
// at most once. A Server whose Run was never called should still be shut
// down by calling Run with a cancelled context.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() { _ = s.ln.Close() }() // closes the socket once its connections are closed
	for {
		conn, err := s.ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("quicnet: accept: %w", err)
		}
		wg.Go(func() { s.serveConn(ctx, conn) })
	}
}

// serveConn accepts the streams of one connection until it or ctx ends.
func (s *Server) serveConn(ctx context.Context, conn *quic.Conn) {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { _ = conn.CloseWithError(codeShutdown, "server shutting down") })
	defer stop()
	for {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return // the connection is closed, or ctx ended and closed it
		}
		wg.Go(func() { s.serveStream(conn, st) })
	}
}

// serveStream answers one request.
func (s *Server) serveStream(conn *quic.Conn, st *quic.Stream) {
	n := s.streams.Add(1)
	for m := s.maxStreams.Load(); n > m && !s.maxStreams.CompareAndSwap(m, n); m = s.maxStreams.Load() {
	}
	log := s.cfg.Logger.With("remote", conn.RemoteAddr().String())
	err := s.answer(st, log)
	// The count drops before the stream ends, so a client that has seen
	// the end of a stream never finds it still counted.
	s.streams.Add(-1)
	if err != nil {
		log.Debug("quicnet: stream failed", "err", err)
		st.CancelRead(codeCancel)
		st.CancelWrite(codeCancel)
		return
	}
	// Not CancelRead: its STOP_SENDING could cancel the client's side before
	// the client has closed it. The client's FIN follows its request.
	_ = st.Close()
}

// answer reads a request from st and writes its answers.
func (s *Server) answer(st *quic.Stream, log *slog.Logger) error {
	_ = st.SetReadDeadline(time.Now().Add(s.cfg.RequestTimeout))
	req, err := readRequest(io.LimitReader(st, maxRequestSize))
	if err != nil {
		if errors.Is(err, errBadRequest) {
			_, werr := st.Write(appendStatus(nil, statusBadRequest, err.Error()))
			return werr // answered: the stream ends cleanly
		}
		return err
	}
	if !validJob(req.job) {
		log.Info("quicnet: bad job name", "job", req.job)
		_, err := st.Write(appendStatus(nil, statusBadRequest, fmt.Sprintf("invalid job name %q", req.job)))
		return err // answered: the stream ends cleanly
	}
	if !s.cfg.Authorize(req.job, req.token) {
		log.Info("quicnet: unauthorized request", "job", req.job)
		_, err := st.Write(appendStatus(nil, statusUnauthorized, "token refused for job "+req.job))
		return err // answered: the stream ends cleanly
	}
	w := &deadlineWriter{st: st, timeout: s.cfg.RequestTimeout}
	bw := bufio.NewWriterSize(w, 64<<10)
	dir := filepath.Join(s.cfg.Dir, req.job)
	var out *shuffle.MapOutput // the last index read, reused for blocks of the same output
	for _, q := range req.blocks {
		if out == nil || out.ID != q.ID {
			out = nil
			o, err := shuffle.ReadIndex(filepath.Join(dir, shuffle.IndexFileName(q.ID)), q.ID)
			if err != nil {
				if err := writeFailure(bw, err); err != nil {
					return err
				}
				continue
			}
			out = o
		}
		if err := sendBlock(bw, out, q.Partition); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// writeFailure answers a block that cannot be served.
func writeFailure(w io.Writer, err error) error {
	status := byte(statusError)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		status = statusNotFound
	case errors.Is(err, shuffle.ErrCorrupt):
		status = statusCorrupt
	}
	_, werr := w.Write(appendStatus(nil, status, err.Error()))
	return werr
}

// sendBlock answers one block of out: its bytes verbatim from the data file.
// Only errors writing to the stream are returned.
func sendBlock(w io.Writer, out *shuffle.MapOutput, partition int) error {
	if partition < 0 || partition >= len(out.Partitions) {
		return writeFailure(w, fmt.Errorf("%w: partition %d of a map output with %d partitions",
			fs.ErrNotExist, partition, len(out.Partitions)))
	}
	p := out.Partitions[partition]
	if p.Length == 0 {
		_, err := w.Write(appendOK(nil, 0))
		return err
	}
	f, err := os.Open(out.DataPath)
	if err != nil {
		return writeFailure(w, err)
	}
	defer func() { _ = f.Close() }() // read-only
	fi, err := f.Stat()
	if err == nil && fi.Size() < p.Offset+p.Length {
		err = fmt.Errorf("%w: data file %s is %d bytes, block ends at %d", shuffle.ErrCorrupt, out.DataPath, fi.Size(), p.Offset+p.Length)
	}
	if err != nil {
		return writeFailure(w, err)
	}
	if _, err := w.Write(appendOK(nil, uint64(p.Length))); err != nil {
		return err
	}
	n, err := io.Copy(w, io.NewSectionReader(f, p.Offset, p.Length))
	if err == nil && n != p.Length {
		err = fmt.Errorf("data file %s shrank while being sent", out.DataPath)
	}
	// A failure here leaves a short block: the stream must be reset, which
	// the caller does when it gets an error.
	return err
}

// deadlineWriter pushes the write deadline forward before each write, so a
// client that stops reading is given up on after the timeout.
type deadlineWriter struct {
	st      *quic.Stream
	timeout time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	_ = w.st.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.st.Write(p)
}

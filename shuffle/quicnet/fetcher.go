package quicnet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wasmgrid/wasmgrid/shuffle"
)

// ErrUnauthorized is returned when an agent refuses the job's token. It is
// not a *shuffle.FetchError: rerunning the map task would not help.
var ErrUnauthorized = errors.New("quicnet: unauthorized")

// ErrInterrupted is wrapped by the *shuffle.FetchError of a fetch that
// Interrupt stopped: its block server was declared lost.
var ErrInterrupted = errors.New("quicnet: block server declared lost")

// FetcherConfig configures a Fetcher. A zero field means its default.
type FetcherConfig struct {
	TLS *tls.Config // client side: RootCAs that sign the agents' certificates
	// MaxConcurrent bounds the streams (requests) in flight at once; a
	// streamed block holds one until it has been read to its end. Default 16.
	MaxConcurrent int
	// MaxBytesInFlight bounds the bytes received but not yet consumed: the
	// blocks being buffered (OpenMany, small blocks) at once, and each
	// connection's QUIC receive window. Default 64 MiB.
	MaxBytesInFlight int64
	// Timeout is the idle timeout of a request: dialing, opening a stream,
	// and each read wait at most this long. Default 30s.
	Timeout time.Duration
	// Limits bound what the block decoder accepts.
	Limits shuffle.Limits
}

const (
	defaultMaxConcurrent = 16
	defaultMaxInFlight   = 64 << 20
	// smallBlock: blocks up to this size are read into memory at once and
	// give back their stream at once, as those of OpenMany.
	smallBlock = 256 << 10
)

// Fetcher fetches blocks from agents: one QUIC connection per agent address,
// reused by every fetch, one stream per request. It is safe for concurrent
// use.
type Fetcher struct {
	cfg     FetcherConfig
	tls     *tls.Config
	slots   chan struct{} // MaxConcurrent
	inFlite *weighted     // MaxBytesInFlight of buffered blocks

	mu     sync.Mutex // protects conns, lives and closed
	conns  map[string]*agentConn
	lives  map[string]*addrLife
	closed bool

	// testHookQueued, if set, runs when a fetch from addr waits for a
	// slot (tests).
	testHookQueued func(addr string)
}

// addrLife ends when Interrupt is called for its address: every fetch
// from the address that began before the call watches it.
type addrLife struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// agentConn is the connection to one agent, or the dial in progress.
type agentConn struct {
	ready chan struct{} // closed when the dial ends
	conn  *quic.Conn
	err   error
}

// NewFetcher returns a fetcher; it dials nothing until asked for a block.
func NewFetcher(cfg FetcherConfig) *Fetcher {
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = defaultMaxConcurrent
	}
	if cfg.MaxBytesInFlight <= 0 {
		cfg.MaxBytesInFlight = defaultMaxInFlight
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	tc := cfg.TLS
	if tc == nil {
		tc = &tls.Config{}
	}
	return &Fetcher{
		cfg:     cfg,
		tls:     tlsConfig(tc),
		slots:   make(chan struct{}, cfg.MaxConcurrent),
		inFlite: newWeighted(cfg.MaxBytesInFlight),
		conns:   map[string]*agentConn{},
		lives:   map[string]*addrLife{},
	}
}

// Interrupt stops every fetch from the block server at addr that began
// before the call, in flight or waiting for a slot or a dial: each fails
// at once with a *shuffle.FetchError naming addr and wrapping
// ErrInterrupted, as does the reading of the blocks it streams. The
// connection to addr is closed; a later fetch dials it again. It is for a
// server declared lost, which may be frozen rather than dead: nothing
// would tell its fetches before the idle timeout. It does not block, and is
// safe for concurrent use.
func (f *Fetcher) Interrupt(addr string) {
	f.mu.Lock()
	l, c := f.lives[addr], f.conns[addr]
	delete(f.lives, addr)
	delete(f.conns, addr)
	f.mu.Unlock()
	if l != nil {
		l.cancel(ErrInterrupted) // the FetchErrors name addr
	}
	if c == nil {
		return
	}
	select {
	case <-c.ready:
		if c.conn != nil {
			_ = c.conn.CloseWithError(codeLost, "block server declared lost")
		}
	default:
		// Being dialed: the dial ends with its fetch, which watched the
		// life just ended, and a connection it made is closed there.
	}
}

// watch returns ctx, also canceled when Interrupt(addr) is called, the
// life of addr that Interrupt ends (at once, where ctx is canceled by
// another goroutine), and the function that releases ctx.
func (f *Fetcher) watch(ctx context.Context, addr string) (_, life context.Context, unwatch func()) {
	f.mu.Lock()
	l := f.lives[addr]
	if l == nil {
		lctx, cancel := context.WithCancelCause(context.Background())
		l = &addrLife{ctx: lctx, cancel: cancel}
		if !f.closed {
			f.lives[addr] = l
		}
	}
	f.mu.Unlock()
	fctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(l.ctx, func() { cancel(context.Cause(l.ctx)) })
	return fctx, l.ctx, func() {
		stop()
		cancel(nil)
	}
}

// interrupted wraps err with the interruption that ended life, if one did.
func interrupted(life context.Context, err error) error {
	if cause := context.Cause(life); cause != nil && !errors.Is(err, ErrInterrupted) {
		return fmt.Errorf("%w (%v)", cause, err)
	}
	return err
}

// Close closes every connection; fetches in progress fail. The fetcher
// cannot be used afterwards.
func (f *Fetcher) Close() error {
	f.mu.Lock()
	f.closed = true
	conns := f.conns
	f.conns = nil
	f.lives = nil
	f.mu.Unlock()
	for _, c := range conns {
		<-c.ready
		if c.conn != nil {
			_ = c.conn.CloseWithError(codeClosed, "fetcher closed")
		}
	}
	return nil
}

var errClosed = errors.New("quicnet: fetcher closed")

// conn returns the connection to addr, dialing it if there is none.
func (f *Fetcher) conn(ctx context.Context, addr string) (*quic.Conn, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, errClosed
	}
	c := f.conns[addr]
	if c != nil {
		f.mu.Unlock()
		if err := await(ctx, c); err != nil {
			return nil, err
		}
		if c.err == nil && c.conn.Context().Err() == nil {
			return c.conn, nil
		}
		f.mu.Lock()
		if f.conns[addr] == c {
			delete(f.conns, addr)
		}
		if f.closed {
			f.mu.Unlock()
			return nil, errClosed
		}
		if c = f.conns[addr]; c != nil { // another caller is dialing
			f.mu.Unlock()
			if err := await(ctx, c); err != nil {
				return nil, err
			}
			return c.conn, c.err
		}
	}
	c = &agentConn{ready: make(chan struct{})}
	f.conns[addr] = c
	f.mu.Unlock()

	dctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	conn, err := quic.DialAddr(dctx, addr, f.tls, f.quicConfig())
	cancel()
	f.mu.Lock()
	// Close or Interrupt ran during the dial and took the entry: they
	// did not see this connection.
	gone, closed := f.conns[addr] != c, f.closed
	if err != nil && !gone {
		delete(f.conns, addr) // the next fetch dials again
	}
	f.mu.Unlock()
	if err == nil && gone {
		_ = conn.CloseWithError(codeClosed, "fetcher closed")
		conn, err = nil, errClosed
		if !closed {
			err = ErrInterrupted
		}
	}
	c.conn, c.err = conn, err
	close(c.ready)
	return c.conn, c.err
}

// await waits for c's dial to end, or for ctx to.
func await(ctx context.Context, c *agentConn) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// quicConfig bounds the bytes a connection buffers: the connection window is
// MaxBytesInFlight, and each stream's window its share among MaxConcurrent
// streams, so that streams a reader is not reading yet can never take the
// window of the one it is waiting on. The connection window starts at its
// maximum: it only grows as data is read, so a smaller start would let
// unread streams stall the others (a deadlock for a merge).
func (f *Fetcher) quicConfig() *quic.Config {
	conn := max(f.cfg.MaxBytesInFlight, 1<<20)
	stream := min(conn/int64(f.cfg.MaxConcurrent), 6<<20)
	return &quic.Config{
		HandshakeIdleTimeout:           f.cfg.Timeout,
		MaxIdleTimeout:                 f.cfg.Timeout,
		KeepAlivePeriod:                f.cfg.Timeout / 3,
		InitialStreamReceiveWindow:     uint64(min(stream, 512<<10)),
		MaxStreamReceiveWindow:         uint64(stream),
		InitialConnectionReceiveWindow: uint64(conn), // never less than the streams' windows together
		MaxConnectionReceiveWindow:     uint64(conn),
		MaxIncomingStreams:             -1,
		MaxIncomingUniStreams:          -1,
		Allow0RTT:                      false,
	}
}

// Open fetches block partition of map output id from the agent at addr,
// for job, with the job's token. The returned reader decodes the block as it
// arrives and verifies every checksum; its errors, like those of Open, are
// *shuffle.FetchError naming id, partition and addr (wrapping
// shuffle.ErrCorrupt or fs.ErrNotExist where they apply), except a refused
// token (ErrUnauthorized) and a bad job name.
//
// A large block is streamed: it holds its stream, and one of MaxConcurrent,
// until it has been read to its end or has failed, or ctx ends, which
// cancels it (so ctx must last as long as the reader is used). A block
// closed before its end keeps its stream until ctx ends, the fetcher is
// closed or Interrupt is called for addr. A caller merging more large
// blocks at once than MaxConcurrent must raise it.
func (f *Fetcher) Open(ctx context.Context, addr, job, token string, id shuffle.MapOutputID, partition int) (*shuffle.BlockReader, error) {
	q := BlockReq{ID: id, Partition: partition}
	rs, _, err := f.fetch(ctx, addr, job, token, []BlockReq{q}, true, Spill{})
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// OpenMany fetches several blocks from the agent at addr on one stream; the
// agent sends them back to back. Each block is read into memory before
// OpenMany returns, so it is meant for many small blocks. On an error the
// blocks already read are dropped.
func (f *Fetcher) OpenMany(ctx context.Context, addr, job, token string, reqs []BlockReq) ([]*shuffle.BlockReader, error) {
	out, _, err := f.OpenManyBudget(ctx, addr, job, token, reqs, Spill{})
	return out, err
}

// Spill says where OpenManyBudget puts the blocks that do not fit in its
// memory budget.
type Spill struct {
	Dir    string // a directory for temporary block files; "" keeps everything in memory
	Budget int64  // bytes of blocks to keep in memory before the rest go to Dir
}

// OpenManyBudget is OpenMany with a memory budget: blocks are kept in
// memory until they would pass sp.Budget, and the rest are written to
// temporary files in sp.Dir, read back from there (and removed when their
// reader is closed, or when the process ends). It returns the bytes kept in
// memory. A reducer's merge then holds one chunk of each spilled block, not
// the blocks.
func (f *Fetcher) OpenManyBudget(ctx context.Context, addr, job, token string, reqs []BlockReq, sp Spill) ([]*shuffle.BlockReader, int64, error) {
	if len(reqs) == 0 {
		return nil, 0, nil
	}
	var out []*shuffle.BlockReader
	var kept int64
	for len(reqs) > 0 {
		n := min(len(reqs), maxBlocks)
		rs, k, err := f.fetch(ctx, addr, job, token, reqs[:n], false, Spill{Dir: sp.Dir, Budget: sp.Budget - kept})
		if err != nil {
			for _, r := range out {
				r.Close()
			}
			return nil, 0, err
		}
		kept += k
		out, reqs = append(out, rs...), reqs[n:]
	}
	return out, kept, nil
}

// fetch sends one request and reads its answers. With stream set, a large
// last block is returned as a reader of the stream.
func (f *Fetcher) fetch(ctx context.Context, addr, job, token string, reqs []BlockReq, stream bool, sp Spill) (_ []*shuffle.BlockReader, kept int64, err error) {
	if !validJob(job) {
		return nil, 0, fmt.Errorf("quicnet: %w: invalid job name %q", errBadRequest, job)
	}
	hdr, err := appendRequest(nil, request{job: job, token: token, blocks: reqs})
	if err != nil {
		return nil, 0, fmt.Errorf("quicnet: %w", err)
	}
	cur := 0 // the block being answered, for errors
	fe := func(err error) error {
		var se *statusErr
		if errors.As(err, &se) {
			switch se.status {
			case statusUnauthorized:
				return fmt.Errorf("%w: job %q at %s: %s", ErrUnauthorized, job, addr, se.msg)
			case statusBadRequest:
				return fmt.Errorf("quicnet: %w from %s: %s", errBadRequest, addr, se.msg)
			case statusNotFound:
				err = fmt.Errorf("%w: %s", fs.ErrNotExist, se.msg)
			case statusCorrupt:
				err = fmt.Errorf("%w: %s", shuffle.ErrCorrupt, se.msg)
			}
		}
		return &shuffle.FetchError{ID: reqs[cur].ID, Partition: reqs[cur].Partition, Location: addr, Err: err}
	}
	// From here ctx is also canceled by Interrupt(addr).
	ctx, life, unwatch := f.watch(ctx, addr)
	if err := f.acquireSlot(ctx, addr); err != nil {
		unwatch()
		return nil, 0, fe(interrupted(life, err))
	}
	s := &stream_{f: f, life: life, timeout: f.cfg.Timeout, unwatch: unwatch}
	defer func() {
		if err != nil {
			s.release(false)
		}
	}()
	conn, err := f.conn(ctx, addr)
	if err != nil {
		return nil, 0, fe(interrupted(life, err))
	}
	octx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	s.st, err = conn.OpenStreamSync(octx)
	cancel()
	if err != nil {
		return nil, 0, fe(interrupted(life, err))
	}
	s.stop = context.AfterFunc(ctx, func() { s.st.CancelRead(codeCancel); s.st.CancelWrite(codeCancel) })
	_ = s.st.SetWriteDeadline(time.Now().Add(f.cfg.Timeout))
	if _, err := s.st.Write(hdr); err != nil {
		return nil, 0, fe(interrupted(life, err))
	}
	_ = s.st.Close() // the request is complete; an error shows in the answer
	out := make([]*shuffle.BlockReader, 0, len(reqs))
	for cur = range reqs {
		q := reqs[cur]
		n, err := readAnswer(s)
		if err != nil {
			return nil, 0, fe(err)
		}
		if stream && cur == len(reqs)-1 && n > smallBlock {
			r, err := s.streamBlock(ctx, q, n, addr, f.cfg.Limits)
			if err != nil {
				return nil, 0, fe(err)
			}
			return append(out, r), kept, nil
		}
		if sp.Dir != "" && n > 0 && kept+int64(n) > sp.Budget {
			file, err := spillBlock(s, n, sp.Dir)
			if err != nil {
				closeAll(out)
				return nil, 0, fe(err)
			}
			r := shuffle.NewBlockDecoder(bufio.NewReaderSize(file, 64<<10), q.ID, q.Partition, f.cfg.Limits)
			r.SetLocation(addr)
			r.CloseWith(file)
			out = append(out, r)
			continue
		}
		b, err := f.readBlock(ctx, s, n)
		if err != nil {
			closeAll(out)
			return nil, 0, fe(interrupted(life, err))
		}
		kept += int64(n)
		if n == 0 {
			b = emptyBlock(q)
		}
		r := shuffle.NewBlockDecoder(bytes.NewReader(b), q.ID, q.Partition, f.cfg.Limits)
		r.SetLocation(addr)
		out = append(out, r)
	}
	if err := s.finish(); err != nil {
		closeAll(out)
		return nil, 0, fe(err)
	}
	return out, kept, nil
}

// acquireSlot takes one of the MaxConcurrent slots.
func (f *Fetcher) acquireSlot(ctx context.Context, addr string) error {
	select {
	case f.slots <- struct{}{}:
		return nil
	default:
	}
	if f.testHookQueued != nil {
		f.testHookQueued(addr)
	}
	select {
	case f.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// spillBlock copies a block of n bytes from the stream to a temporary file
// in dir, which it unlinks at once: the file lives until its reader closes
// it, and a crash leaves nothing behind.
func spillBlock(s *stream_, n uint64, dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, ".tmp-fetch-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	if _, err := io.CopyN(f, s, int64(n)); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func closeAll(rs []*shuffle.BlockReader) {
	for _, r := range rs {
		r.Close()
	}
}

// readBlock reads a whole block of n bytes into memory; an empty partition
// (n = 0) becomes an empty block, made here.
func (f *Fetcher) readBlock(ctx context.Context, s *stream_, n uint64) ([]byte, error) {
	if n == 0 {
		return nil, nil // replaced by the caller's empty block below
	}
	if n < blockHeaderSize {
		return nil, fmt.Errorf("%w: block of %d bytes", shuffle.ErrCorrupt, n)
	}
	w := int64(min(n, uint64(f.cfg.MaxBytesInFlight)))
	if err := f.inFlite.acquire(ctx, w); err != nil {
		return nil, err
	}
	defer f.inFlite.release(w)
	// Grow as bytes arrive, so a lying length costs only what is sent.
	var buf bytes.Buffer
	m, err := io.CopyN(&buf, s, int64(n))
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: block truncated at %d of %d bytes", shuffle.ErrCorrupt, m, n)
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// blockHeaderSize is the size of a block header (docs/shuffle.md, "Shuffle
// block format, version 1"); its u64 body_len is at offset 48.
const blockHeaderSize = 64

// emptyBlock returns the block of an empty partition, which the wire sends as
// zero bytes: a header with no chunks, records or bytes.
func emptyBlock(q BlockReq) []byte {
	b := make([]byte, blockHeaderSize)
	le := binary.LittleEndian
	copy(b, "WGSB")
	le.PutUint16(b[4:], 1) // version
	b[6] = 1               // codec zstd
	le.PutUint64(b[8:], q.ID.ShuffleID)
	le.PutUint32(b[16:], q.ID.MapIndex)
	le.PutUint32(b[20:], q.ID.Attempt)
	le.PutUint32(b[24:], uint32(q.Partition))
	le.PutUint32(b[60:], crc32.Checksum(b[:60], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// stream_ is the client side of one request: a stream with an idle timeout
// on every read, holding one of the fetcher's slots until released.
type stream_ struct {
	f       *Fetcher
	life    context.Context // ended by Interrupt: errors say so
	st      *quic.Stream
	timeout time.Duration
	stop    func() bool // stops the cancellation on ctx
	unwatch func()      // releases ctx
	once    sync.Once
}

func (s *stream_) Read(p []byte) (int, error) {
	_ = s.st.SetReadDeadline(time.Now().Add(s.timeout))
	n, err := s.st.Read(p)
	if err != nil && err != io.EOF {
		err = interrupted(s.life, err)
	}
	return n, err
}

// release gives back the slot, once; unless the stream ended cleanly, it is
// cancelled. It may be called from any goroutine.
func (s *stream_) release(clean bool) {
	s.once.Do(func() {
		if s.stop != nil {
			s.stop()
		}
		if s.st != nil && !clean {
			s.st.CancelRead(codeCancel)
			s.st.CancelWrite(codeCancel)
		}
		s.unwatch()
		<-s.f.slots
	})
}

// finish reads the end of the stream after the last answer, then releases
// it. Waiting for the end means the server has finished with the stream
// when its slot is given back.
func (s *stream_) finish() error {
	var b [1]byte
	n, err := io.ReadFull(s, b[:])
	if n > 0 {
		s.release(false)
		return fmt.Errorf("%w: bytes after the last answer", shuffle.ErrCorrupt)
	}
	if !errors.Is(err, io.EOF) {
		s.release(false)
		return err
	}
	s.release(true)
	return nil
}

// streamBlock returns a reader decoding a block of n bytes as it arrives.
func (s *stream_) streamBlock(ctx context.Context, q BlockReq, n uint64, addr string, lim shuffle.Limits) (*shuffle.BlockReader, error) {
	// The decoder reads exactly the bytes its header announces; check that
	// they are the n bytes sent, so the reader reaches the end of the stream
	// and gives it back.
	hb := make([]byte, blockHeaderSize)
	if n < blockHeaderSize {
		return nil, fmt.Errorf("%w: block of %d bytes", shuffle.ErrCorrupt, n)
	}
	if _, err := io.ReadFull(s, hb); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: block header truncated", shuffle.ErrCorrupt)
		}
		return nil, err
	}
	if body := binary.LittleEndian.Uint64(hb[48:]); body != n-blockHeaderSize {
		return nil, fmt.Errorf("%w: block header announces %d body bytes, %d sent", shuffle.ErrCorrupt, body, n-blockHeaderSize)
	}
	// Abandoning the reader must not keep its slot past ctx.
	s.stop()
	s.stop = context.AfterFunc(ctx, func() { s.release(false) })
	bs := &blockStream{s: s, left: n - blockHeaderSize}
	r := shuffle.NewBlockDecoder(io.MultiReader(bytes.NewReader(hb), bs), q.ID, q.Partition, lim)
	r.SetLocation(addr)
	return r, nil
}

// blockStream reads the body of a streamed block, then the end of the
// stream, and releases the stream when done or failed.
type blockStream struct {
	s    *stream_
	left uint64
}

func (b *blockStream) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	if uint64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.s.Read(p)
	b.left -= uint64(n)
	if b.left == 0 {
		if err := b.s.finish(); err != nil {
			return n, err
		}
		return n, nil
	}
	if err != nil {
		b.s.release(false)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	}
	return n, nil
}

// weighted is a counting semaphore of bytes.
type weighted struct {
	mu   sync.Mutex // protects cur and wake
	max  int64
	cur  int64
	wake chan struct{} // closed and replaced on every release
}

func newWeighted(n int64) *weighted { return &weighted{max: n, wake: make(chan struct{})} }

func (w *weighted) acquire(ctx context.Context, n int64) error {
	for {
		w.mu.Lock()
		if w.cur+n <= w.max {
			w.cur += n
			w.mu.Unlock()
			return nil
		}
		ch := w.wake
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func (w *weighted) release(n int64) {
	w.mu.Lock()
	w.cur -= n
	close(w.wake)
	w.wake = make(chan struct{})
	w.mu.Unlock()
}

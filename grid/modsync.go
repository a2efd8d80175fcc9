package grid

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/gossip"
	"github.com/wasmgrid/wasmgrid/internal/wire"
	"github.com/wasmgrid/wasmgrid/shuffle/quicnet"
)

// moduleSync moves modules between coordinator servers, over the control
// plane's QUIC with mutual TLS: a peer is a server of the config, known
// by its certificate's common name, and nothing else may push or fetch
// as one. The leader pushes an upload to the others before it commits
// the module's record (replicate); a server that lacks a module the log
// names fetches it from another in the background (want, run), and
// before it serves it (ensure). Modules stream through one buffer: none
// is ever whole in memory.
type moduleSync struct {
	dir     string
	self    string         // this server's name
	servers []ServerConfig // every server, this one included
	tls     *tls.Config    // the control plane's client side
	limit   int64          // limits.module_size
	logger  *slog.Logger
	// addrOf is the control address of server name, from gossip ("":
	// not known yet).
	addrOf func(name string) string
	// stillWanted reports whether the log still names hash.
	stillWanted func(hash string) bool

	mu       sync.Mutex
	calls    map[string]*fetchCall // fetches in progress, by hash
	wanted   map[string]bool       // modules to fetch in the background
	chasing  map[string]bool       // those a goroutine of run fetches
	wake     chan struct{}
	runCtx   context.Context // set while run runs: background pushes
	bg       sync.WaitGroup  // run's goroutines and background pushes
	stopping bool
}

// fetchCall is one fetch of a module, which others wait for.
type fetchCall struct {
	done chan struct{}
	err  error
}

// peerTransferTimeout bounds one module's transfer between servers: at a
// modest 1 MiB/s, the largest module allowed by default.
const peerTransferTimeout = 5 * time.Minute

func newModuleSync(dir, self string, servers []ServerConfig, clientTLS *tls.Config, limit int64) *moduleSync {
	return &moduleSync{
		dir: dir, self: self, servers: servers, tls: clientTLS, limit: limit,
		addrOf:      func(string) string { return "" },
		stillWanted: func(string) bool { return true },
		calls:       map[string]*fetchCall{},
		wanted:      map[string]bool{},
		chasing:     map[string]bool{},
		wake:        make(chan struct{}, 1),
	}
}

// peers are the other servers.
func (s *moduleSync) peers() []ServerConfig {
	var out []ServerConfig
	for _, sc := range s.servers {
		if sc.Name != s.self {
			out = append(out, sc)
		}
	}
	return out
}

// isPeer reports whether a control connection's certificate names one of
// the other servers.
func (s *moduleSync) isPeer(name string) bool {
	return name != "" && name != s.self && slices.ContainsFunc(s.servers, func(sc ServerConfig) bool { return sc.Name == name })
}

func (s *moduleSync) path(hash string) string { return filepath.Join(s.dir, hash+".wasm") }

func (s *moduleSync) has(hash string) bool {
	_, err := os.Stat(s.path(hash))
	return err == nil
}

// want asks for hash in the background; it never blocks (the log's apply
// calls it).
func (s *moduleSync) want(hash string) {
	s.mu.Lock()
	s.wanted[hash] = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run fetches wanted modules until ctx ends, each until it is here or the
// log no longer names it, then waits for the pushes it owns.
func (s *moduleSync) run(ctx context.Context) {
	s.mu.Lock()
	s.runCtx = ctx
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		s.bg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		s.mu.Lock()
		var start []string
		for h := range s.wanted {
			if !s.chasing[h] {
				s.chasing[h] = true
				start = append(start, h)
			}
		}
		s.mu.Unlock()
		for _, h := range start {
			s.bg.Go(func() { s.chase(ctx, h) })
		}
	}
}

// chase fetches hash until it is here, the log no longer names it, or ctx
// ends.
func (s *moduleSync) chase(ctx context.Context, hash string) {
	defer func() {
		s.mu.Lock()
		delete(s.wanted, hash)
		delete(s.chasing, hash)
		s.mu.Unlock()
	}()
	for backoff := 200 * time.Millisecond; ctx.Err() == nil; backoff = min(2*backoff, 10*time.Second) {
		if s.has(hash) || !s.stillWanted(hash) {
			return
		}
		err := s.ensure(ctx, hash)
		if err == nil {
			s.logger.Info("module fetched from another coordinator server", "hash", hash)
			return
		}
		s.logger.Warn("a module the log names is missing here: fetching it again", "hash", hash, "err", err, "retry_in", backoff)
		sleep(ctx, backoff)
	}
}

// ensure returns once this server holds hash, fetching it from another
// server if it must; concurrent callers share one fetch.
func (s *moduleSync) ensure(ctx context.Context, hash string) error {
	if s.has(hash) {
		return nil
	}
	s.mu.Lock()
	call := s.calls[hash]
	if call == nil {
		call = &fetchCall{done: make(chan struct{})}
		s.calls[hash] = call
		s.mu.Unlock()
		call.err = s.fetch(ctx, hash)
		s.mu.Lock()
		delete(s.calls, hash)
		s.mu.Unlock()
		close(call.done)
		return call.err
	}
	s.mu.Unlock()
	select {
	case <-call.done:
		if call.err != nil {
			return call.err
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fetch gets hash from the first server that has it.
func (s *moduleSync) fetch(ctx context.Context, hash string) error {
	var errs []error
	for _, p := range s.peers() {
		err := s.fetchFrom(ctx, p.Name, hash)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", p.Name, err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return errors.New("no other coordinator server")
	}
	return fmt.Errorf("module %s is on no reachable server: %w", hash, errors.Join(errs...))
}

// dial opens a stream to server name's control plane; done closes it.
func (s *moduleSync) dial(ctx context.Context, name string) (st quicnet.Stream, done func(), err error) {
	addr := s.addrOf(name)
	if addr == "" {
		return nil, nil, errors.New("its control address is not in gossip yet")
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := quicnet.DialControl(dctx, addr, s.tls, controlIdle)
	if err != nil {
		return nil, nil, err
	}
	if st, err = conn.OpenStream(dctx); err != nil {
		_ = conn.Close("no stream")
		return nil, nil, err
	}
	_ = st.SetDeadline(time.Now().Add(peerTransferTimeout))
	// The stream's reads do not watch ctx: closing the connection ends
	// them.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close("cancelled") })
	return st, func() { stop(); _ = conn.Close("done") }, nil
}

// fetchFrom streams hash from server name into the module directory.
func (s *moduleSync) fetchFrom(ctx context.Context, name, hash string) error {
	st, done, err := s.dial(ctx, name)
	if err != nil {
		return err
	}
	defer done()
	if err := wire.Write(st, wire.TypeFetchModule, &wire.FetchModule{Hash: hash}); err != nil {
		return err
	}
	var m wire.Module
	if err := wire.Expect(st, wire.TypeModule, &m); err != nil {
		return err
	}
	if m.Hash != hash || m.Size < 0 || m.Size > s.limit {
		return fmt.Errorf("it answered module %s of %d bytes", m.Hash, m.Size)
	}
	return receive(s.dir, st, hash, m.Size)
}

// receive stores size bytes of r as module hash, fsynced, or nothing.
func receive(dir string, r io.Reader, hash string, size int64) error {
	got, n, err := writeModuleFrom(dir, io.LimitReader(r, size), size)
	switch {
	case err != nil:
		return err
	case n != size:
		return fmt.Errorf("%d bytes of %d arrived", n, size)
	case got != hash:
		return fmt.Errorf("the bytes have sha256 %s", got)
	}
	return nil
}

// replicate pushes module hash (its file here) to the other servers and
// returns once a majority of all the servers, this one included, holds it
// fsynced. Pushes still under way then go on in the background, owned by
// run. An error means no majority was reached before ctx ended or every
// push failed.
func (s *moduleSync) replicate(ctx context.Context, hash string, size int64) error {
	peers := s.peers()
	need := (len(peers)+1)/2 + 1 - 1 // a majority, less this server
	if need <= 0 {
		return nil
	}
	s.mu.Lock()
	bctx, stopping := s.runCtx, s.stopping
	if bctx == nil || stopping {
		s.mu.Unlock()
		return errors.New("the coordinator is stopping")
	}
	results := make(chan error, len(peers))
	for _, p := range peers {
		s.bg.Go(func() {
			err := s.pushTo(bctx, p.Name, hash, size)
			if err != nil {
				err = fmt.Errorf("%s: %w", p.Name, err)
			}
			results <- err
		})
	}
	s.mu.Unlock()
	var errs []error
	for ok := 0; ok < need; {
		select {
		case err := <-results:
			if err == nil {
				ok++
				continue
			}
			errs = append(errs, err)
			if len(errs) > len(peers)-need {
				return fmt.Errorf("module %s reached no majority of the coordinator servers: %w", hash, errors.Join(errs...))
			}
		case <-ctx.Done():
			return fmt.Errorf("module %s: waiting for a majority of the coordinator servers: %w", hash, context.Cause(ctx))
		}
	}
	return nil
}

// pushTo offers hash to server name and streams it if the server lacks it.
func (s *moduleSync) pushTo(ctx context.Context, name, hash string, size int64) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = s.pushOnce(ctx, name, hash, size); err == nil || ctx.Err() != nil {
			return err
		}
		sleep(ctx, time.Duration(attempt+1)*500*time.Millisecond)
	}
	return err
}

func (s *moduleSync) pushOnce(ctx context.Context, name, hash string, size int64) error {
	f, err := os.Open(s.path(hash))
	if err != nil {
		return err
	}
	defer f.Close()
	st, done, err := s.dial(ctx, name)
	if err != nil {
		return err
	}
	defer done()
	if err := wire.Write(st, wire.TypePushModule, &wire.PushModule{Hash: hash, Size: size}); err != nil {
		return err
	}
	var ans wire.ModuleStored
	if err := wire.Expect(st, wire.TypeModuleStored, &ans); err != nil {
		return err
	}
	if ans.Stored {
		return nil
	}
	buf := copyBuffers.Get().(*[copyBufferSize]byte)
	_, err = io.CopyBuffer(st, io.LimitReader(f, size), buf[:])
	copyBuffers.Put(buf)
	if err != nil {
		return err
	}
	if err := wire.Expect(st, wire.TypeModuleStored, &ans); err != nil {
		return err
	}
	if !ans.Stored || ans.Hash != hash {
		return fmt.Errorf("it did not store module %s", hash)
	}
	return nil
}

// servePush stores a module another server pushes, and says so once it
// is on disk, fsynced.
func (s *moduleSync) servePush(st quicnet.Stream, req wire.PushModule) {
	if !validHash(req.Hash) || req.Size < 0 || req.Size > s.limit {
		_ = wire.Write(st, wire.TypeError, &wire.Error{Msg: fmt.Sprintf("module %q of %d bytes refused (limits.module_size is %d)", req.Hash, req.Size, s.limit)})
		return
	}
	if fi, err := os.Stat(s.path(req.Hash)); err == nil && fi.Size() == req.Size {
		_ = wire.Write(st, wire.TypeModuleStored, &wire.ModuleStored{Hash: req.Hash, Stored: true})
		return
	}
	if err := wire.Write(st, wire.TypeModuleStored, &wire.ModuleStored{Hash: req.Hash}); err != nil {
		return
	}
	if err := receive(s.dir, st, req.Hash, req.Size); err != nil {
		_ = wire.Write(st, wire.TypeError, &wire.Error{Msg: "module " + req.Hash + ": " + err.Error()})
		return
	}
	_ = wire.Write(st, wire.TypeModuleStored, &wire.ModuleStored{Hash: req.Hash, Stored: true})
}

// serveFetch sends module hash's bytes, after a Module header; ensure,
// when it is not nil, first fetches a module this server lacks.
func serveFetch(ctx context.Context, st quicnet.Stream, dir, hash string, ensure func(context.Context, string) error) {
	if !validHash(hash) {
		_ = wire.Write(st, wire.TypeError, &wire.Error{Msg: "not a module hash: " + hash})
		return
	}
	path := filepath.Join(dir, hash+".wasm")
	if _, err := os.Stat(path); err != nil && ensure != nil {
		if err := ensure(ctx, hash); err != nil {
			_ = wire.Write(st, wire.TypeError, &wire.Error{Msg: "no module " + hash + ": " + err.Error()})
			return
		}
	}
	f, err := os.Open(path)
	if err != nil {
		_ = wire.Write(st, wire.TypeError, &wire.Error{Msg: "no module " + hash})
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return
	}
	if err := wire.Write(st, wire.TypeModule, &wire.Module{Hash: hash, Size: fi.Size()}); err != nil {
		return
	}
	buf := copyBuffers.Get().(*[copyBufferSize]byte)
	defer copyBuffers.Put(buf)
	_, _ = io.CopyBuffer(st, io.LimitReader(f, fi.Size()), buf[:])
}

// controlAddrOf is the control address server name advertises in gossip,
// with its gossip host when it listens on every address.
func (c *Coordinator) controlAddrOf(name string) string {
	for _, m := range c.gossip.Members() {
		if m.Name != name || m.Tags[gossip.TagRole] != "coordinator" || m.Status.String() != "alive" {
			continue
		}
		addr := m.Tags[gossip.TagControl]
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return ""
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			return net.JoinHostPort(m.Addr.String(), port)
		}
		return addr
	}
	return ""
}

// servePeer serves one request of another coordinator server on its
// stream: a module it pushes, or one it fetches.
func (c *Coordinator) servePeer(ctx context.Context, conn *quicnet.ControlConn, st quicnet.Stream, env wire.Envelope) {
	defer func() {
		// Closing the connection at once could drop the last answer:
		// the peer closes it once it has read it.
		_ = st.Close()
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case <-conn.Done():
		case <-ctx.Done():
		case <-t.C:
		}
	}()
	_ = st.SetDeadline(time.Now().Add(peerTransferTimeout))
	switch env.Type {
	case wire.TypePushModule:
		var req wire.PushModule
		if err := env.Decode(&req); err != nil {
			return
		}
		c.sync.servePush(st, req)
	case wire.TypeFetchModule:
		var req wire.FetchModule
		if err := env.Decode(&req); err != nil {
			return
		}
		// No fetch on behalf of a peer: two servers that both lack a
		// module must not wait on each other.
		serveFetch(ctx, st, c.modulesDir, req.Hash, nil)
	default:
		_ = wire.Write(st, wire.TypeError, &wire.Error{Msg: "unexpected " + env.Type + " from a coordinator server"})
	}
}

// ensureNamed makes sure this server holds a module the log names or a
// running job uses, fetching it from another server if it must.
func (c *Coordinator) ensureNamed(ctx context.Context, hash string) error {
	if !c.modules.named(hash) && !c.moduleInUse(hash) {
		return errors.New("no such module")
	}
	return c.sync.ensure(ctx, hash)
}

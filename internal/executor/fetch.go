package executor

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"

	"github.com/wasmgrid/wasmgrid/internal/certs"
	"github.com/wasmgrid/wasmgrid/shuffle"
	"github.com/wasmgrid/wasmgrid/shuffle/quicnet"
)

// ShuffleALPN is the TLS application protocol of the block transport.
const ShuffleALPN = "wasmgrid-shuffle/1"

// fetchers keeps one QUIC fetcher per executor process: fetches to one
// agent share its connection, whatever task makes them.
type fetchers struct {
	mu      sync.Mutex // protects f
	f       *quicnet.Fetcher
	caPEM   []byte
	certPEM []byte // with keyPEM: the node certificate, for mutual TLS
	keyPEM  []byte
	initErr error
}

func (fs *fetchers) get() (*quicnet.Fetcher, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.f == nil && fs.initErr == nil {
		tlsCfg, err := fs.tls()
		if err != nil {
			fs.initErr = fmt.Errorf("shuffle TLS: %w", err)
		} else {
			fs.f = quicnet.NewFetcher(quicnet.FetcherConfig{TLS: tlsCfg})
		}
	}
	return fs.f, fs.initErr
}

func (fs *fetchers) tls() (*tls.Config, error) {
	if len(fs.certPEM) == 0 {
		return certs.ClientConfig(fs.caPEM, ShuffleALPN)
	}
	cert, err := tls.X509KeyPair(fs.certPEM, fs.keyPEM)
	if err != nil {
		return nil, err
	}
	_, client, err := certs.Mutual(fs.caPEM, cert, ShuffleALPN)
	return client, err
}

// interrupt stops the fetches from addr in flight (quicnet.Fetcher.Interrupt).
func (fs *fetchers) interrupt(addr string) {
	fs.mu.Lock()
	f := fs.f
	fs.mu.Unlock()
	if f != nil {
		f.Interrupt(addr)
	}
}

func (fs *fetchers) close() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.f != nil {
		fs.f.Close()
	}
}

// quicBlocks opens a job's shuffle blocks from the agents' block servers.
type quicBlocks struct {
	fetchers *fetchers
	job      string
	token    string
	peers    map[string]string // agent name -> block server address
	// lost holds, by block server address, a context that ends when the
	// server is declared lost after the attempt arrived (nil: never).
	lost map[string]context.Context
}

// OpenBlocks implements Blocks.
func (b quicBlocks) OpenBlocks(ctx context.Context, agent string, ids []shuffle.MapOutputID, partition int, budget int64, spillDir string) ([]BlockIterator, int64, error) {
	addr, ok := b.peers[agent]
	if !ok {
		return nil, 0, &shuffle.FetchError{ID: ids[0], Partition: partition, Location: agent, Err: fmt.Errorf("agent %q has no known block server", agent)}
	}
	if lost := b.lost[addr]; lost != nil {
		// Declared lost since the attempt arrived: its map outputs are
		// gone, and a new dial to a frozen server would wait for the
		// handshake's timeout.
		if lost.Err() != nil {
			return nil, 0, &shuffle.FetchError{ID: ids[0], Partition: partition, Location: addr, Err: context.Cause(lost)}
		}
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		stop := context.AfterFunc(lost, func() { cancel(context.Cause(lost)) })
		defer stop()
	}
	f, err := b.fetchers.get()
	if err != nil {
		return nil, 0, err
	}
	reqs := make([]quicnet.BlockReq, len(ids))
	for i, id := range ids {
		reqs[i] = quicnet.BlockReq{ID: id, Partition: partition}
	}
	readers, kept, err := f.OpenManyBudget(ctx, addr, b.job, b.token, reqs, quicnet.Spill{Dir: spillDir, Budget: budget})
	if err != nil {
		return nil, 0, err
	}
	out := make([]BlockIterator, len(readers))
	for i, r := range readers {
		out[i] = r
	}
	return out, kept, nil
}

// losses tells attempts that block servers were lost: one context per
// address, canceled when the address's server is declared lost and then
// replaced, so that attempts that arrive later (reading from an agent that
// came back at the same address) are not concerned.
type losses struct {
	mu    sync.Mutex // protects lives
	lives map[string]*lossLife
}

type lossLife struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// watch returns the contexts of the addresses an attempt reads from.
func (l *losses) watch(peers map[string]string) map[string]context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lives == nil {
		l.lives = map[string]*lossLife{}
	}
	out := make(map[string]context.Context, len(peers))
	for _, addr := range peers {
		life := l.lives[addr]
		if life == nil {
			ctx, cancel := context.WithCancelCause(context.Background())
			life = &lossLife{ctx, cancel}
			l.lives[addr] = life
		}
		out[addr] = life.ctx
	}
	return out
}

// lose ends the context of addr: the attempts watching it stop fetching
// from it.
func (l *losses) lose(agent, addr string) {
	l.mu.Lock()
	life := l.lives[addr]
	delete(l.lives, addr)
	l.mu.Unlock()
	if life != nil {
		life.cancel(fmt.Errorf("the block server of agent %s was declared lost: %w", agent, quicnet.ErrInterrupted))
	}
}

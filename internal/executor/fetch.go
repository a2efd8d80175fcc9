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
}

// OpenBlocks implements Blocks.
func (b quicBlocks) OpenBlocks(ctx context.Context, agent string, ids []shuffle.MapOutputID, partition int, budget int64, spillDir string) ([]BlockIterator, int64, error) {
	addr, ok := b.peers[agent]
	if !ok {
		return nil, 0, &shuffle.FetchError{ID: ids[0], Partition: partition, Location: agent, Err: fmt.Errorf("agent %q has no known block server", agent)}
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

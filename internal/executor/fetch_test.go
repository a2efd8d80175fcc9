package executor

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/shuffle"
	"github.com/wasmgrid/wasmgrid/shuffle/quicnet"
)

// TestLostPeerStopsFetches declares a block server lost while an attempt
// dials it (a socket that swallows every datagram, as a frozen agent's
// does): the fetch fails at once with a FetchError, and a second fetch of
// the same attempt fails without dialing. An attempt that arrives after
// the loss is not concerned by it (the agent may come back at the same
// address).
func TestLostPeerStopsFetches(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer pc.Close() // ends the reader
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
	_, cTLS, err := quicnet.EphemeralTLS()
	if err != nil {
		t.Fatal(err)
	}
	fs := &fetchers{f: quicnet.NewFetcher(quicnet.FetcherConfig{TLS: cTLS, Timeout: 10 * time.Minute})}
	defer fs.close()
	var ls losses
	peers := map[string]string{"agent-2": addr}
	b := quicBlocks{fetchers: fs, job: "job-1", token: "t", peers: peers, lost: ls.watch(peers)}
	ids := []shuffle.MapOutputID{{ShuffleID: 1, MapIndex: 4}}
	open := func() error {
		_, _, err := b.OpenBlocks(context.Background(), "agent-2", ids, 0, 1<<20, t.TempDir())
		return err
	}
	check := func(what string, err error) {
		t.Helper()
		var fe *shuffle.FetchError
		if !errors.As(err, &fe) || fe.ID != ids[0] || fe.Location != addr || !errors.Is(err, quicnet.ErrInterrupted) {
			t.Fatalf("%s: %v, want a FetchError of %v from %s wrapping quicnet.ErrInterrupted", what, err, ids[0], addr)
		}
		t.Logf("%s: %v", what, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- open() }()
	<-got // the fetch is dialing
	// Only the attempt's watch: the fetcher is not interrupted.
	ls.lose("agent-2", addr)
	check("in flight", <-errc)
	check("after the loss", open())

	later := ls.watch(peers)[addr]
	if later.Err() != nil {
		t.Fatal("an attempt that arrived after the loss sees it")
	}
}

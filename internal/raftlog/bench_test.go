package raftlog

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkQUICPropose measures proposals through a 3-server QUIC cluster
// on loopback, every Ready fsynced, one proposer at a time ("serial") and
// 16 at once; beside it, the same number of bare bbolt transactions (one
// 64-byte put and an fsync each) on one server, the floor that one
// durable write sets. ratio is the proposal rate over the bare rate.
func BenchmarkQUICPropose(b *testing.B) {
	for _, workers := range []int{1, 16} {
		name := "serial"
		if workers > 1 {
			name = fmt.Sprintf("%d-way", workers)
		}
		b.Run(name, func(b *testing.B) {
			c := newQUICCluster(b, 3, nil)
			c.startAll()
			lead := c.node(c.leader(electionBound))
			cmd := make([]byte, 64)
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			var mu sync.Mutex
			var firstErr error
			for w := range workers {
				wg.Go(func() {
					for i := w; i < b.N; i += workers {
						if _, err := lead.Propose(ctx, cmd); err != nil {
							mu.Lock()
							firstErr = err
							mu.Unlock()
							return
						}
					}
				})
			}
			wg.Wait()
			proposals := time.Since(start)
			b.StopTimer()
			if firstErr != nil {
				b.Fatal(firstErr)
			}
			raw := bareTransactions(b, b.N)
			b.ReportMetric(float64(b.N)/proposals.Seconds(), "proposals/s")
			b.ReportMetric(float64(b.N)/raw.Seconds(), "bbolt-tx/s")
			b.ReportMetric(raw.Seconds()/proposals.Seconds(), "ratio")
		})
	}
}

// bareTransactions times n bbolt transactions of one put each, with
// bbolt's default fsync at commit.
func bareTransactions(b *testing.B, n int) time.Duration {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "bare.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucketEntries); return err }); err != nil {
		b.Fatal(err)
	}
	val := make([]byte, 64)
	start := time.Now()
	for i := range n {
		err := db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketEntries).Put(binary.BigEndian.AppendUint64(nil, uint64(i)), val)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

package quicnet

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"

	"github.com/wasmgrid/wasmgrid/shuffle"
)

// BenchmarkTransport moves the same 64 MiB of blocks (incompressible values,
// so the blocks are as large as their records) as one large block and as 256
// small blocks, over quicnet (decoding and verifying every block, as a
// reducer does) and over plain TCP (io.Copy of the same file bytes).
func BenchmarkTransport(b *testing.B) {
	const total = 64 << 20
	for _, shape := range []struct {
		name  string
		parts int
	}{{"large", 1}, {"small256", 256}} {
		h := newBenchHarness(b)
		rng := rand.New(rand.NewPCG(9, uint64(shape.parts)))
		id := shuffle.MapOutputID{ShuffleID: 1}
		out := h.write(testJob, id, shape.parts, randRecords(rng, total/(32<<10), 64<<10, "b"))
		size := int64(0)
		for _, p := range out.Partitions {
			size += p.Length
		}
		b.Run(shape.name+"/quic", func(b *testing.B) {
			b.SetBytes(size)
			ctx := context.Background()
			for b.Loop() {
				var rs []*shuffle.BlockReader
				if shape.parts == 1 {
					r, err := h.f.Open(ctx, h.addr, testJob, testToken, id, 0)
					if err != nil {
						b.Fatal(err)
					}
					rs = append(rs, r)
				} else {
					reqs := make([]BlockReq, shape.parts)
					for p := range reqs {
						reqs[p] = BlockReq{ID: id, Partition: p}
					}
					var err error
					if rs, err = h.f.OpenMany(ctx, h.addr, testJob, testToken, reqs); err != nil {
						b.Fatal(err)
					}
				}
				for _, r := range rs {
					for r.Next() {
					}
					if err := r.Err(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Run(shape.name+"/tcp", func(b *testing.B) {
			b.SetBytes(size)
			benchTCP(b, out)
		})
		h.close()
	}
}

// benchTCP serves the blocks of out over one TCP connection per iteration,
// back to back, and reads them with io.Copy.
func benchTCP(b *testing.B, out *shuffle.MapOutput) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f, err := os.Open(out.DataPath)
			if err == nil {
				for _, p := range out.Partitions {
					if _, err := io.Copy(c, io.NewSectionReader(f, p.Offset, p.Length)); err != nil {
						break
					}
				}
				_ = f.Close()
			}
			_ = c.Close()
		}
	}()
	for b.Loop() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, c); err != nil {
			b.Fatal(err)
		}
		_ = c.Close()
	}
	_ = ln.Close()
	<-done
}

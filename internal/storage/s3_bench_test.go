package storage_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/internal/storage/s3test"
)

// writeN writes n bytes to w in writes of len(buf), calling each after
// every write.
func writeN(w io.Writer, buf []byte, n int, each func()) error {
	for n > 0 {
		k := min(n, len(buf))
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
		if each != nil {
			each()
		}
	}
	return nil
}

// TestS3WriterMemory measures the heap that writers hold while they stream
// files several parts long: one part each (minio-go's part buffer), not
// the file.
func TestS3WriterMemory(t *testing.T) {
	srv := s3test.Start(t)
	s := openS3(t, s3Volume(srv, "mem"))
	defer s.Close()
	const size = 3 * storage.S3PartSize
	buf := pattern(6, 1<<20)
	for _, writers := range []int{1, 3} {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapAlloc
		var peak atomic.Uint64
		var mu sync.Mutex // serializes ReadMemStats
		sample := func() {
			mu.Lock()
			defer mu.Unlock()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for i := range writers {
			wg.Go(func() {
				w, err := s.Create(context.Background(), fmt.Sprintf("w%d/part-%05d", writers, i))
				if err == nil {
					err = writeN(w, buf, size, sample)
				}
				if err == nil {
					err = w.Commit()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		grown := int64(peak.Load()) - int64(base)
		per := grown / int64(writers)
		t.Logf("%d writer(s) of %d MiB each: heap grew by %.1f MiB at most, %.1f MiB per writer (part size %d MiB)",
			writers, size>>20, float64(grown)/(1<<20), float64(per)/(1<<20), storage.S3PartSize>>20)
		if per > 5*storage.S3PartSize/2 {
			t.Errorf("%d writer(s): %d MiB per writer; want about one part (%d MiB), not the file (%d MiB)", writers, per>>20, storage.S3PartSize>>20, size>>20)
		}
	}
}

// BenchmarkStore writes and reads a large file through the file store
// and the S3 store (on the loopback test server), in the same run:
//
//	WASMGRID_WEED=... go test -run XXX -bench Store -benchtime 3x ./internal/storage/
func BenchmarkStore(b *testing.B) {
	const size = 256 << 20
	buf := pattern(7, 1<<20)
	for _, kind := range []string{"file", "s3"} {
		var s storage.Store // openS3 opens any volume
		if kind == "file" {
			s = openS3(b, storage.Volume{Name: "vol", URL: "file://" + b.TempDir()})
		} else {
			s = openS3(b, s3Volume(s3test.Start(b), "bench"))
		}
		b.Run(kind+"/write", func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				w, err := s.Create(context.Background(), "big")
				if err != nil {
					b.Fatal(err)
				}
				if err := writeN(w, buf, size, nil); err != nil {
					b.Fatal(err)
				}
				if err := w.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(kind+"/read", func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				r, err := s.Open(context.Background(), "big", 0)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, r, make([]byte, 1<<20))
				r.Close()
				if err != nil || n != size {
					b.Fatalf("read %d bytes, %v", n, err)
				}
			}
		})
		// A commit moves each part into place: on S3, a copy on the server.
		b.Run(kind+"/rename", func(b *testing.B) {
			b.SetBytes(size)
			from, to := "big", "moved"
			for b.Loop() {
				if err := s.Rename(context.Background(), from, to); err != nil {
					b.Fatal(err)
				}
				from, to = to, from
			}
		})
		s.Close()
	}
}

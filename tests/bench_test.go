package tests

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/wasmgrid/wasmgrid/examples/wordcount"
	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

var (
	benchOnce  sync.Once
	benchInput string
	benchErr   error
)

// benchCorpus writes a 32 MB corpus once per test binary.
func benchCorpus(b *testing.B) string {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wasmgrid-bench")
		if err != nil {
			benchErr = err
			return
		}
		benchInput = filepath.Join(dir, "corpus.txt")
		benchErr = writeCorpus(benchInput, 32<<20, 7)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchInput
}

// BenchmarkWordCount runs the whole word count over the same file natively
// (read, split, count in a map, in one goroutine, as a plain Go program
// would) and as a job on the embedded grid with each guest language: tasks
// in executor processes, shuffle files, the text sink.
func BenchmarkWordCount(b *testing.B) {
	input := benchCorpus(b)
	fi, err := os.Stat(input)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("native", func(b *testing.B) {
		b.SetBytes(fi.Size())
		for b.Loop() {
			f, err := os.Open(input)
			if err != nil {
				b.Fatal(err)
			}
			counts := map[string]int64{}
			sc := bufio.NewReaderSize(f, 1<<20)
			for {
				line, err := sc.ReadSlice('\n')
				wordcount.Split(line, func(k, _ []byte) { counts[string(k)]++ })
				if err == bufio.ErrBufferFull {
					continue
				}
				if err != nil {
					break
				}
			}
			f.Close()
			out, err := os.Create(filepath.Join(b.TempDir(), "out"))
			if err != nil {
				b.Fatal(err)
			}
			w := bufio.NewWriter(out)
			for k, v := range counts {
				w.WriteString(k)
				w.WriteByte('\t')
				w.WriteString(itoa(v))
				w.WriteByte('\n')
			}
			w.Flush()
			out.Close()
		}
	})
	for _, lang := range []string{"go", "rust", "c", "assemblyscript"} {
		b.Run("grid-"+lang, func(b *testing.B) {
			g, err := local.Start(local.Config{Slots: runtime.NumCPU()})
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			out := filepath.Join(b.TempDir(), "out")
			ctx := context.Background()
			job, err := sdk.LoadJob(ctx, repoPath("examples/wordcount/job.toml"),
				map[string]string{"input": input, "output": out, "guest": lang},
				map[string]string{"sink.overwrite": "true"})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(fi.Size())
			for b.Loop() {
				if _, err := g.Run(ctx, job, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

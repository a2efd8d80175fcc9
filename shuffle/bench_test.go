package shuffle

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"github.com/wasmgrid/wasmgrid/internal/batch"
	"math/rand/v2"
	"slices"
	"testing"
)

// benchWords returns word-count-like records: Zipf-distributed words of a
// vocabulary of 50,000 with the value "1", as a word-count map task emits
// them, and their raw size.
func benchWords(n int) ([][2][]byte, int64) {
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.07, 2, 50000)
	vocab := make([][]byte, 50001)
	for i := range vocab {
		// Words of 2 to 12 letters, like English text.
		w := make([]byte, 2+rng.IntN(11))
		for j := range w {
			w[j] = byte('a' + rng.IntN(26))
		}
		vocab[i] = w
	}
	recs := make([][2][]byte, n)
	var raw int64
	for i := range recs {
		recs[i] = [2][]byte{vocab[zipf.Uint64()], []byte("1")}
		raw += int64(recHdrSize + len(recs[i][0]) + 1)
	}
	return recs, raw
}

func BenchmarkWriter(b *testing.B) {
	recs, raw := benchWords(1 << 20)
	batches := benchBatches(recs, 64<<10)
	recs = nil
	for _, bc := range []struct {
		name    string
		level   int
		combine CombineFunc
	}{
		{"level=1", 1, nil},
		{"level=2", 2, nil},
		{"level=1/combine", 1, sumCombine},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			b.SetBytes(raw)
			var stored, rawOut int64
			for i := 0; b.Loop(); i++ {
				w, err := NewWriter(WriterConfig{Dir: dir, ID: MapOutputID{MapIndex: uint32(i)}, Partitions: 16, Level: bc.level, Combine: bc.combine})
				if err != nil {
					b.Fatal(err)
				}
				for _, batch := range batches {
					if err := w.AddBatch(batch); err != nil {
						b.Fatal(err)
					}
				}
				out, err := w.Commit()
				if err != nil {
					b.Fatal(err)
				}
				stored, rawOut = 0, 0
				for _, p := range out.Partitions {
					stored, rawOut = stored+p.Length, rawOut+p.RawBytes
				}
			}
			b.ReportMetric(float64(rawOut)/float64(stored), "ratio")
		})
	}
}

// benchBatches encodes records into batches of about size bytes, as a task's
// output arrives from wasm.
func benchBatches(recs [][2][]byte, size int) [][]byte {
	var batches [][]byte
	var cur []byte
	n := uint32(0)
	for _, r := range recs {
		if cur == nil {
			cur, n = make([]byte, 4, size+64), 0
		}
		cur = batch.AppendRecord(cur, r[0], r[1])
		n++
		if len(cur) >= size {
			binary.LittleEndian.PutUint32(cur, n)
			batches, cur = append(batches, cur), nil
		}
	}
	if cur != nil {
		binary.LittleEndian.PutUint32(cur, n)
		batches = append(batches, cur)
	}
	return batches
}

// BenchmarkEncode measures only writing sorted records into blocks (copying
// and compressing), without sorting and without the files' fsyncs, whose
// cost depends on the disk and not on the level.
func BenchmarkEncode(b *testing.B) {
	recs, raw := benchWords(1 << 20)
	for _, level := range []int{1, 2} {
		b.Run(fmt.Sprint("level=", level), func(b *testing.B) {
			w, err := NewWriter(WriterConfig{Dir: b.TempDir(), Partitions: 16, Level: level})
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range recs {
				if err := w.Add(r[0], r[1]); err != nil {
					b.Fatal(err)
				}
			}
			w.sort()
			b.SetBytes(raw)
			var sink discardAt
			for b.Loop() {
				sink = 0
				if _, err := w.writeBlocks(&sink); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(raw)/float64(sink), "ratio")
		})
	}
}

// discardAt counts the bytes written to it.
type discardAt int64

func (d *discardAt) WriteAt(p []byte, off int64) (int, error) {
	*d = discardAt(max(int64(*d), off+int64(len(p))))
	return len(p), nil
}

func BenchmarkBlockReader(b *testing.B) {
	recs, raw := benchWords(1 << 20)
	w, err := NewWriter(WriterConfig{Dir: b.TempDir(), Partitions: 1})
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Add(r[0], r[1]); err != nil {
			b.Fatal(err)
		}
	}
	out, err := w.Commit()
	if err != nil {
		b.Fatal(err)
	}
	ref := BlockRef{ID: out.ID, IndexPath: out.IndexPath}
	b.SetBytes(raw)
	b.ReportAllocs()
	for b.Loop() {
		r, err := OpenBlock(ref, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for r.Next() {
			n++
		}
		if r.Err() != nil || n != len(recs) {
			b.Fatal(n, r.Err())
		}
		_ = r.Close()
	}
}

// bytesIter iterates records without allocating.
type bytesIter struct {
	recs [][2][]byte
	i    int
}

func (it *bytesIter) Next() bool    { it.i++; return it.i <= len(it.recs) }
func (it *bytesIter) Key() []byte   { return it.recs[it.i-1][0] }
func (it *bytesIter) Value() []byte { return it.recs[it.i-1][1] }
func (it *bytesIter) Err() error    { return nil }

func BenchmarkMerger(b *testing.B) {
	recs, _ := benchWords(1 << 18)
	for _, k := range []int{2, 8, 64} {
		b.Run(fmt.Sprint("inputs=", k), func(b *testing.B) {
			inputs := make([][][2][]byte, k)
			for i, r := range recs {
				inputs[i%k] = append(inputs[i%k], r)
			}
			for _, in := range inputs {
				slices.SortStableFunc(in, func(x, y [2][]byte) int { return bytes.Compare(x[0], y[0]) })
			}
			its := make([]Iterator, k)
			b.ReportAllocs()
			for b.Loop() {
				for i := range its {
					its[i] = &bytesIter{recs: inputs[i]}
				}
				m := NewMerger(its)
				for m.Next() {
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(recs)), "ns/record")
		})
	}
}

// BenchmarkChunkCodec measures the codec alone, chunk by chunk as the writer
// calls it, on the record streams of two word-count blocks: sorted map
// output without a combiner (runs of equal words), and combined output
// (each word once, with its count).
func BenchmarkChunkCodec(b *testing.B) {
	recs, _ := benchWords(1 << 20)
	slices.SortStableFunc(recs, func(x, y [2][]byte) int { return bytes.Compare(x[0], y[0]) })
	var sorted, combined []byte
	for i, r := range recs {
		sorted = batch.AppendRecord(sorted, r[0], r[1])
		if i == 0 || !bytes.Equal(r[0], recs[i-1][0]) {
			n := 1
			for i+n < len(recs) && bytes.Equal(recs[i+n][0], r[0]) {
				n++
			}
			combined = batch.AppendRecord(combined, r[0], []byte(fmt.Sprint(n)))
		}
	}
	for _, data := range []struct {
		name   string
		stream []byte
	}{{"sorted", sorted}, {"combined", combined}} {
		for _, level := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/level=%d", data.name, level), func(b *testing.B) {
				w, err := NewWriter(WriterConfig{Dir: b.TempDir(), Partitions: 1, Level: level})
				if err != nil {
					b.Fatal(err)
				}
				var out []byte
				var stored int
				b.SetBytes(int64(len(data.stream)))
				for b.Loop() {
					stored = 0
					for s := data.stream; len(s) > 0; {
						chunk := s[:min(len(s), defaultChunkSize)]
						s = s[len(chunk):]
						out = w.enc.EncodeAll(chunk, out[:0])
						stored += len(out)
					}
				}
				b.ReportMetric(float64(len(data.stream))/float64(stored), "ratio")
			})
		}
	}
}

// BenchmarkSpillMerge writes word-count-like records through the writer with
// a budget of 1/20 of the data (about 20 spilled runs, merged by Commit) and
// with a budget larger than the data (sorted in memory), so the cost of
// spilling can be quoted as a ratio.
func BenchmarkSpillMerge(b *testing.B) {
	recs, raw := benchWords(1 << 20)
	batches := benchBatches(recs, 64<<10)
	recs = nil
	inMemory := 1<<20*entrySize + raw
	for _, bc := range []struct {
		name    string
		memory  int64
		combine CombineFunc
	}{
		{"spill", inMemory / 20, nil},
		{"in-memory", 2 * inMemory, nil},
		{"spill/combine", inMemory / 20, sumCombine},
		{"in-memory/combine", 2 * inMemory, sumCombine},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			b.SetBytes(raw)
			spills := 0
			for i := 0; b.Loop(); i++ {
				w, err := NewWriter(WriterConfig{Dir: dir, ID: MapOutputID{MapIndex: uint32(i)}, Partitions: 16, Memory: bc.memory, Combine: bc.combine})
				if err != nil {
					b.Fatal(err)
				}
				for _, batch := range batches {
					if err := w.AddBatch(batch); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := w.Commit(); err != nil {
					b.Fatal(err)
				}
				spills = w.spills
			}
			b.ReportMetric(float64(spills), "runs")
		})
	}
}

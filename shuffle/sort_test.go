package shuffle

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// The writer's sort against a stable comparison sort, for partitions that
// need one, two and three radix digits.
func TestWriterSort(t *testing.T) {
	for _, parts := range []int{1, 3, 300, 70000} {
		t.Run(fmt.Sprint(parts, " partitions"), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(parts), 3))
			w, err := NewWriter(WriterConfig{Dir: t.TempDir(), Partitions: parts})
			if err != nil {
				t.Fatal(err)
			}
			type ref struct {
				part int
				kv
			}
			var want []ref
			for i, r := range randRecords(rng, 20000) {
				r.value = fmt.Sprint(i) // tells equal keys apart
				if err := w.Add([]byte(r.key), []byte(r.value)); err != nil {
					t.Fatal(err)
				}
				want = append(want, ref{HashPartition([]byte(r.key), parts), r})
			}
			slices.SortStableFunc(want, func(a, b ref) int {
				return cmp.Or(cmp.Compare(a.part, b.part), bytes.Compare([]byte(a.key), []byte(b.key)))
			})
			w.sort()
			for i, e := range w.entries {
				rec := w.record(e)
				got := ref{int(e.part), kv{string(w.key(e)), string(rec[recHdrSize+e.klen:])}}
				if got != want[i] {
					t.Fatalf("entry %d is %v, want %v", i, got, want[i])
				}
			}
		})
	}
}

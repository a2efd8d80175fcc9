package shuffle

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// wordCounts returns word-count-like records: Zipf-distributed words, each
// with a count of 1 to 3.
func wordCounts(rng *rand.Rand, n, vocab int) []kv {
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(vocab-1))
	recs := make([]kv, n)
	for i := range recs {
		recs[i] = kv{"word" + strconv.FormatUint(zipf.Uint64(), 10), strconv.Itoa(1 + rng.IntN(3))}
	}
	return recs
}

func TestCombine(t *testing.T) {
	tests := []struct {
		name           string
		records, vocab int
		partitions     int
		memory         int64
		piece          int
		wantCompaction bool
		wantPieces     bool // several Combine calls for some partition
	}{
		{name: "no compaction", records: 20000, vocab: 500, partitions: 4},
		{name: "compaction under tiny memory", records: 20000, vocab: 500, partitions: 4, memory: 8 << 10, wantCompaction: true},
		{name: "runs straddle pieces", records: 20000, vocab: 20, partitions: 1, piece: 300, wantPieces: true},
		{name: "compaction and pieces", records: 30000, vocab: 3000, partitions: 3, memory: 4 << 10, piece: 100, wantCompaction: true, wantPieces: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 2))
			recs := wordCounts(rng, tt.records, tt.vocab)
			calls, maxPiece := 0, 0
			combine := func(batch []byte) ([]byte, error) {
				calls++
				if n := binary.LittleEndian.Uint32(batch); n > 2 {
					maxPiece = max(maxPiece, len(batch)-4)
				}
				return sumCombine(batch)
			}
			w, err := NewWriter(WriterConfig{Dir: t.TempDir(), Partitions: tt.partitions, Combine: combine, Memory: tt.memory})
			if err != nil {
				t.Fatal(err)
			}
			if tt.piece > 0 {
				w.pieceSize = tt.piece
			}
			for _, r := range recs {
				if err := w.Add([]byte(r.key), []byte(r.value)); err != nil {
					t.Fatal(err)
				}
			}
			compactions := w.compactions
			out, err := w.Commit()
			if err != nil {
				t.Fatal(err)
			}
			if (compactions > 0) != tt.wantCompaction {
				t.Fatalf("%d compactions, want some: %v", compactions, tt.wantCompaction)
			}
			if tt.wantPieces && calls <= tt.partitions*(compactions+1) {
				t.Fatalf("%d Combine calls: pieces did not split", calls)
			}
			if piece := w.pieceSize; maxPiece > piece {
				t.Fatalf("Combine got %d bytes of records, more than a piece of %d", maxPiece, piece)
			}
			checkSums(t, out, recs)
		})
	}
}

// checkSums checks that every partition holds each of its keys once, in
// order, with the sum of its counts.
func checkSums(t *testing.T, out *MapOutput, recs []kv) {
	t.Helper()
	want := map[string]int{}
	for _, r := range recs {
		n, _ := strconv.Atoi(r.value)
		want[r.key] += n
	}
	n := len(out.Partitions)
	got := 0
	for p := range n {
		var prev string
		for i, r := range readAll(t, openBlock(t, out, p)) {
			if i > 0 && r.key <= prev {
				t.Fatalf("partition %d: key %q after %q", p, r.key, prev)
			}
			if HashPartition([]byte(r.key), n) != p {
				t.Fatalf("key %q in partition %d", r.key, p)
			}
			if strconv.Itoa(want[r.key]) != r.value {
				t.Fatalf("key %q: sum %s, want %d", r.key, r.value, want[r.key])
			}
			prev = r.key
			got++
		}
	}
	if got != len(want) {
		t.Fatalf("%d keys in the output, want %d", got, len(want))
	}
}

// A key whose run straddles pieces is folded exactly once.
func TestCombineStraddle(t *testing.T) {
	w, err := NewWriter(WriterConfig{Dir: t.TempDir(), Partitions: 1, Combine: sumCombine})
	if err != nil {
		t.Fatal(err)
	}
	w.pieceSize = 64 // about 6 records of "k"="1"
	var recs []kv
	for i := range 100 {
		recs = append(recs, kv{"k", "1"})
		if i%10 == 0 {
			recs = append(recs, kv{"a" + strconv.Itoa(i), "1"})
		}
	}
	recs = append(recs, kv{"z", "5"})
	for _, r := range recs {
		if err := w.Add([]byte(r.key), []byte(r.value)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, openBlock(t, out, 0))
	want := []kv{}
	for i := 0; i < 100; i += 10 {
		want = append(want, kv{"a" + strconv.Itoa(i), "1"})
	}
	want = append(sortStable(want), kv{"k", "100"}, kv{"z", "5"})
	equalRecords(t, "straddle", got, want)
}

func TestCombineErrors(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		combine CombineFunc
		want    string
	}{
		{"error", func([]byte) ([]byte, error) { return nil, errBoom }, "boom"},
		{"no count", func([]byte) ([]byte, error) { return []byte{1}, nil }, "malformed batch"},
		{"count too high", func(b []byte) ([]byte, error) { return append([]byte{9, 0, 0, 0}, b[4:]...), nil }, "malformed batch"},
		{"trailing bytes", func(b []byte) ([]byte, error) { return append(b, 0), nil }, "malformed batch"},
		{"unsorted", func([]byte) ([]byte, error) { return encodeBatch([]kv{{"b", "1"}, {"a", "1"}}), nil }, "out of key order"},
		{"unsorted across pieces", descending(), "out of key order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := NewWriter(WriterConfig{Dir: dir, Partitions: 1, Combine: tt.combine})
			if err != nil {
				t.Fatal(err)
			}
			w.pieceSize = 20
			for _, k := range []string{"c", "d", "e", "f", "g"} {
				if err := w.Add([]byte(k), []byte("1")); err != nil {
					t.Fatal(err)
				}
			}
			_, err = w.Commit()
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "partition 0") {
				t.Fatalf("Commit error %v, want it to mention %q", err, tt.want)
			}
			if tt.name == "error" && !errors.Is(err, errBoom) {
				t.Fatalf("Commit error %v does not wrap the combiner's", err)
			}
			if names, _ := osReadDir(dir); len(names) != 0 {
				t.Fatalf("failed Commit left %v", names)
			}
		})
	}
}

// A combiner that does not shrink the data does not make every Add compact.
func TestCompactionBackoff(t *testing.T) {
	identity := func(b []byte) ([]byte, error) { return b, nil }
	w, err := NewWriter(WriterConfig{Dir: t.TempDir(), Partitions: 2, Combine: identity, Memory: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	recs := randRecords(rand.New(rand.NewPCG(5, 5)), 20000)
	for _, r := range recs {
		if err := w.Add([]byte(r.key), []byte(r.value)); err != nil {
			t.Fatal(err)
		}
	}
	if w.compactions < 1 || w.compactions > 20 {
		t.Fatalf("%d compactions for %d records", w.compactions, len(recs))
	}
	out, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	// The identity combiner keeps every record, in stable order.
	for p := range 2 {
		var want []kv
		for _, r := range recs {
			if HashPartition([]byte(r.key), 2) == p {
				want = append(want, r)
			}
		}
		equalRecords(t, "identity combine", readAll(t, openBlock(t, out, p)), sortStable(want))
	}
}

// descending returns a combiner whose outputs go down in key order from one
// call to the next.
func descending() CombineFunc {
	next := byte('z')
	return func([]byte) ([]byte, error) {
		next--
		return encodeBatch([]kv{{string(next), "1"}, {string(next) + "x", "1"}}), nil
	}
}

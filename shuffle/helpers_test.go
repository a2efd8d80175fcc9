package shuffle

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"github.com/wasmgrid/wasmgrid/internal/batch"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
)

// kv is a record in tests; strings make comparisons easy.
type kv struct{ key, value string }

func (r kv) String() string { return fmt.Sprintf("%q=%.40q(%d)", r.key, r.value, len(r.value)) }

// randRecords returns n records with duplicate keys, empty keys and values,
// keys with zero bytes, and mostly tiny records.
func randRecords(rng *rand.Rand, n int) []kv {
	recs := make([]kv, n)
	for i := range recs {
		var key []byte
		switch rng.IntN(12) {
		case 0:
			key = nil
		case 10:
			// A shared 8-byte prefix: only the bytes after it differ.
			key = append([]byte("sharedpf"), make([]byte, rng.IntN(3))...)
			if len(key) > 8 {
				key[len(key)-1] = byte(rng.IntN(3))
			}
		case 11:
			// Short keys equal but for trailing zero bytes.
			key = append([]byte("ab"), make([]byte, rng.IntN(8))...)
		case 1:
			key = []byte{0, byte(rng.IntN(3)), 0}
		case 2:
			key = make([]byte, rng.IntN(40))
			for j := range key {
				key[j] = byte(rng.IntN(256))
			}
		default:
			key = []byte("w" + strconv.Itoa(rng.IntN(300)))
		}
		var value []byte
		if rng.IntN(5) > 0 {
			value = make([]byte, rng.IntN(20))
			for j := range value {
				value[j] = byte('a' + rng.IntN(26))
			}
		}
		recs[i] = kv{string(key), string(value)}
	}
	return recs
}

// sortStable is the reference: a stable sort by key.
func sortStable(recs []kv) []kv {
	recs = slices.Clone(recs)
	slices.SortStableFunc(recs, func(a, b kv) int { return bytes.Compare([]byte(a.key), []byte(b.key)) })
	return recs
}

func readAll(t testing.TB, it Iterator) []kv {
	t.Helper()
	var out []kv
	for it.Next() {
		out = append(out, kv{string(it.Key()), string(it.Value())})
	}
	if err := it.Err(); err != nil {
		t.Fatalf("read: %v", err)
	}
	return out
}

func equalRecords(t testing.TB, what string, got, want []kv) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: record %d is %v, want %v", what, i, got[i], want[i])
		}
	}
}

func encodeBatch(recs []kv) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(recs)))
	for _, r := range recs {
		b = batch.AppendRecord(b, []byte(r.key), []byte(r.value))
	}
	return b
}

// writeOutput writes recs with cfg, half with Add and half with AddBatch.
func writeOutput(t testing.TB, cfg WriterConfig, recs []kv, codec uint8) *MapOutput {
	t.Helper()
	w, err := NewWriter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.codec = codec
	half := len(recs) / 2
	for _, r := range recs[:half] {
		if err := w.Add([]byte(r.key), []byte(r.value)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.AddBatch(encodeBatch(recs[half:])); err != nil {
		t.Fatal(err)
	}
	out, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func openBlock(t testing.TB, out *MapOutput, p int) *BlockReader {
	t.Helper()
	r, err := OpenBlock(BlockRef{ID: out.ID, Partition: p, DataPath: out.DataPath, IndexPath: out.IndexPath, Location: "test"}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// sumCombine folds runs of equal keys whose values are ASCII decimal counts.
func sumCombine(in []byte) ([]byte, error) {
	it, err := batch.Open(in)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 4, len(in))
	var n uint32
	var key []byte
	var sum int64
	have := false
	flush := func() {
		out = batch.AppendRecord(out, key, strconv.AppendInt(nil, sum, 10))
		n++
	}
	for it.Next() {
		v, err := strconv.ParseInt(string(it.Value()), 10, 64)
		if err != nil {
			return nil, err
		}
		if have && bytes.Equal(it.Key(), key) {
			sum += v
			continue
		}
		if have {
			flush()
		}
		key, sum, have = it.Key(), v, true
	}
	if have {
		flush()
	}
	binary.LittleEndian.PutUint32(out, n)
	return out, nil
}

func osReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, err
}

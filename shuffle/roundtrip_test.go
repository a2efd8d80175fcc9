package shuffle

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	firstByte := func(key []byte, n int) int {
		if len(key) == 0 {
			return 0
		}
		return int(key[0]) % n
	}
	tests := []struct {
		name       string
		maps       int
		records    int
		partitions int
		chunkSize  int
		level      int
		raw        bool // codec none
		partition  func([]byte, int) int
		bigValue   bool
	}{
		{name: "one partition", maps: 1, records: 500, partitions: 1},
		{name: "several partitions", maps: 3, records: 3000, partitions: 5},
		{name: "tiny chunks", maps: 2, records: 800, partitions: 3, chunkSize: 7},
		{name: "uncompressed tiny chunks", maps: 2, records: 800, partitions: 3, chunkSize: 13, raw: true},
		{name: "more partitions than keys", maps: 2, records: 20, partitions: 64},
		{name: "custom partitioner", maps: 2, records: 1000, partitions: 4, partition: firstByte},
		{name: "many tiny records", maps: 2, records: 50000, partitions: 7, chunkSize: 4096},
		{name: "big value spans chunks", maps: 2, records: 300, partitions: 3, bigValue: true},
		{name: "level 2", maps: 1, records: 2000, partitions: 3, level: 2},
		{name: "level 4", maps: 1, records: 2000, partitions: 3, level: 4},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			dir := t.TempDir()
			part := tt.partition
			if part == nil {
				part = HashPartition
			}
			var outs []*MapOutput
			var all [][]kv // records of each map, in input order
			for m := range tt.maps {
				recs := randRecords(rng, tt.records)
				if tt.bigValue {
					big := make([]byte, 5<<20)
					_, _ = rand.NewChaCha8([32]byte{byte(m)}).Read(big)
					for j := range big {
						big[j] &= 3 // compressible, but not trivially
					}
					recs[rng.IntN(len(recs))] = kv{"big", string(big)}
				}
				cfg := WriterConfig{
					Dir: dir, ID: MapOutputID{ShuffleID: 9, MapIndex: uint32(m), Attempt: 2},
					Partitions: tt.partitions, Partition: tt.partition, Level: tt.level, ChunkSize: tt.chunkSize,
				}
				codec := uint8(codecZstd)
				if tt.raw {
					codec = codecNone
				}
				out := writeOutput(t, cfg, recs, codec)
				checkMapOutput(t, out, recs, part)
				outs, all = append(outs, out), append(all, recs)
			}
			checkPartitions(t, outs, all, part)
		})
	}
}

// checkMapOutput checks the index and each block of one map output on its own.
func checkMapOutput(t *testing.T, out *MapOutput, recs []kv, part func([]byte, int) int) {
	t.Helper()
	idx, err := ReadIndex(out.IndexPath, out.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(idx, out) {
		t.Fatalf("ReadIndex = %+v, Commit returned %+v", idx, out)
	}
	n := len(out.Partitions)
	for p := range n {
		var want []kv
		var raw int64
		for _, r := range recs {
			if part([]byte(r.key), n) == p {
				want = append(want, r)
				raw += int64(8 + len(r.key) + len(r.value))
			}
		}
		info := out.Partitions[p]
		if info.Records != int64(len(want)) || info.RawBytes != raw || (info.Length == 0) != (len(want) == 0) {
			t.Fatalf("partition %d: info %+v, want %d records of %d raw bytes", p, info, len(want), raw)
		}
		equalRecords(t, "block", readAll(t, openBlock(t, out, p)), sortStable(want))
	}
}

// checkPartitions merges each partition's blocks across map outputs, and all
// blocks of all outputs, against the reference.
func checkPartitions(t *testing.T, outs []*MapOutput, all [][]kv, part func([]byte, int) int) {
	t.Helper()
	n := len(outs[0].Partitions)
	var every []Iterator
	var concat []kv
	for _, recs := range all {
		concat = append(concat, recs...)
	}
	for p := range n {
		var its []Iterator
		var want []kv
		for _, r := range concat {
			if part([]byte(r.key), n) == p {
				want = append(want, r)
			}
		}
		for _, out := range outs {
			its = append(its, openBlock(t, out, p))
		}
		equalRecords(t, "merged partition", readAll(t, NewMerger(its)), sortStable(want))
	}
	for _, out := range outs {
		for p := range n {
			every = append(every, openBlock(t, out, p))
		}
	}
	equalRecords(t, "merge of everything", readAll(t, NewMerger(every)), sortStable(concat))
}

func TestWriterConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  WriterConfig
		want string
	}{
		{"no dir", WriterConfig{Partitions: 1}, "no directory"},
		{"no partitions", WriterConfig{Dir: dir}, "0 partitions"},
		{"too many partitions", WriterConfig{Dir: dir, Partitions: maxPartitions + 1}, "partitions"},
		{"bad level", WriterConfig{Dir: dir, Partitions: 1, Level: 5}, "zstd level 5"},
		{"negative memory", WriterConfig{Dir: dir, Partitions: 1, Memory: -1}, "negative memory"},
		{"huge chunk", WriterConfig{Dir: dir, Partitions: 1, ChunkSize: maxChunkRaw + 1}, "chunk size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.cfg
			_, err := NewWriter(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewWriter error %v, want it to mention %q", err, tt.want)
			}
			if !reflect.DeepEqual(before, tt.cfg) {
				t.Fatal("NewWriter modified its argument")
			}
		})
	}
}

func TestWriterMisuse(t *testing.T) {
	dir := t.TempDir()
	bad := func([]byte, int) int { return 7 }
	w, err := NewWriter(WriterConfig{Dir: dir, Partitions: 3, Partition: bad})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add([]byte("k"), nil); err == nil || !strings.Contains(err.Error(), "returned 7 for 3 partitions") {
		t.Fatalf("Add with a bad partitioner: %v", err)
	}
	w, err = NewWriter(WriterConfig{Dir: dir, Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range [][]byte{nil, {1, 0, 0, 0}, append(encodeBatch([]kv{{"a", "b"}}), 0), {2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'k'}} {
		if err := w.AddBatch(batch); err == nil {
			t.Fatalf("AddBatch(%v) accepted a malformed batch", batch)
		}
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(nil, nil); err == nil {
		t.Fatal("Add after Commit succeeded")
	}
	if _, err := w.Commit(); err == nil {
		t.Fatal("second Commit succeeded")
	}
	// An aborted writer writes nothing.
	w, err = NewWriter(WriterConfig{Dir: dir, ID: MapOutputID{MapIndex: 1}, Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
}

// An output with no records at all has an index of empty partitions, and a
// data file of no bytes; no temporary file is left behind.
func TestEmptyOutput(t *testing.T) {
	dir := t.TempDir()
	out := writeOutput(t, WriterConfig{Dir: dir, Partitions: 4}, nil, codecZstd)
	for p := range 4 {
		if out.Partitions[p] != (PartitionInfo{}) {
			t.Fatalf("partition %d: %+v", p, out.Partitions[p])
		}
		if got := readAll(t, openBlock(t, out, p)); len(got) != 0 {
			t.Fatalf("partition %d has records", p)
		}
	}
	ents, err := osReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{DataFileName(out.ID), IndexFileName(out.ID)}; !reflect.DeepEqual(ents, want) {
		t.Fatalf("directory holds %v, want %v", ents, want)
	}
}

func TestNames(t *testing.T) {
	id := MapOutputID{ShuffleID: 3, MapIndex: 7}
	for _, c := range []struct{ got, want string }{
		{id.String(), "shuffle 3 map 7 attempt 0"},
		{DataFileName(id), "shuffle_3_7_0.data"},
		{IndexFileName(id), "shuffle_3_7_0.index"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	// XXH64 with seed 0, as other languages compute it.
	if got := HashPartition([]byte("abc"), 1<<30); got != int(0x44bc2cf5ad770999%(1<<30)) {
		t.Errorf("HashPartition(abc) = %d", got)
	}
}

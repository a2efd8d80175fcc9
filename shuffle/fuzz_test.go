package shuffle

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// FuzzMerge checks the merger against a stable sort: the fuzzer's bytes
// become up to 8 sorted inputs of short keys over a small alphabet.
func FuzzMerge(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 'a', 'b', 0, 'a', 1, 'b', 2, 'a'})
	f.Add([]byte("\x05aaabbbcccaaa\x00\x01\x02zzz"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		k := int(data[0]%8) + 1
		inputs := make([][]kv, k)
		for i, b := range data[1:] {
			// Each byte adds a record to input b%k with a key of up to 2 bytes.
			key := string([]byte{'a' + b>>4&3, 'a' + b>>2&3}[:int(b>>6)%3])
			in := int(b) % k
			inputs[in] = append(inputs[in], kv{key, string(rune('0' + i%10))})
		}
		for i := range inputs {
			inputs[i] = sortStable(inputs[i])
		}
		equalRecords(t, "merge", readAll(t, NewMerger(iters(inputs))), mergeRef(inputs))
	})
}

var fuzzID = MapOutputID{ShuffleID: 1, MapIndex: 2, Attempt: 3}

// fuzzLimits keep a fuzzed block small: no chunk can declare more than
// MaxBlockRaw raw bytes.
var fuzzLimits = Limits{MaxBlockRaw: 1 << 20, MaxRecord: 64 << 10}

// seedOutput writes a small map output for seed corpora.
func seedOutput(f *testing.F, chunkSize int, codec uint8) *MapOutput {
	recs := randRecords(rand.New(rand.NewPCG(uint64(chunkSize), 0)), 60)
	recs = append(recs, kv{"long", string(bytes.Repeat([]byte("xyz"), 500))})
	cfg := WriterConfig{Dir: f.TempDir(), ID: fuzzID, Partitions: 2, ChunkSize: chunkSize}
	return writeOutput(f, cfg, recs, codec)
}

// FuzzBlockDecoder feeds arbitrary bytes to the decoder: it must never
// panic, and never allocate much beyond its limits.
func FuzzBlockDecoder(f *testing.F) {
	for _, c := range []struct {
		chunk int
		codec uint8
	}{{64, codecZstd}, {1 << 20, codecZstd}, {50, codecNone}, {300, codecNone}} {
		out := seedOutput(f, c.chunk, c.codec)
		f.Add(false, blockBytes(f, out, 0))
		f.Add(true, blockBytes(f, out, 0))
	}
	f.Add(false, craftBlock(fuzzID, 1024, rleFrame(4, 1024, 2)))
	f.Fuzz(func(t *testing.T, fix bool, data []byte) {
		if fix {
			// Make the checksums right, so the fuzzer gets past them to the
			// record stream and the totals.
			data = fixChecksums(data)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := NewBlockDecoder(bytes.NewReader(data), fuzzID, 0, fuzzLimits)
		n := 0
		for r.Next() {
			n++
			if int64(len(r.Key())+len(r.Value())) > fuzzLimits.MaxRecord {
				t.Fatalf("record of %d bytes", len(r.Key())+len(r.Value()))
			}
		}
		if err := r.Err(); err == nil && r.hdr.records != uint64(n) {
			t.Fatalf("clean end after %d of %d records", n, r.hdr.records)
		}
		runtime.ReadMemStats(&after)
		// A chunk is at most MaxBlockRaw raw bytes; the decoder may hold a
		// few such buffers, and the zstd decoder its own state.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8*uint64(fuzzLimits.MaxBlockRaw)+4*uint64(len(data)) {
			t.Fatalf("allocated %d bytes for %d bytes of input", alloc, len(data))
		}
	})
}

// fixChecksums returns a copy of a block whose header checksum, and the
// checksum of every chunk it can decode, are correct.
func fixChecksums(data []byte) []byte {
	data = bytes.Clone(data)
	if len(data) < headerSize {
		return data
	}
	le := binary.LittleEndian
	le.PutUint32(data[60:], crc32c(data[:60]))
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<20))
	if err != nil {
		panic(err)
	}
	defer dec.Close()
	for b := data[headerSize:]; len(b) >= chunkHdrSize; {
		stored := int(le.Uint32(b[4:]))
		if stored > len(b)-chunkHdrSize {
			break
		}
		raw := b[chunkHdrSize : chunkHdrSize+stored]
		if data[6] == codecZstd {
			if raw, err = dec.DecodeAll(raw, nil); err != nil {
				break
			}
		}
		le.PutUint32(b[8:], crc32c(raw))
		b = b[chunkHdrSize+stored:]
	}
	return data
}

// FuzzReadIndex feeds arbitrary bytes to ReadIndex as an index file: it must
// never panic, and an index it accepts must encode back to the same bytes.
func FuzzReadIndex(f *testing.F) {
	for _, chunk := range []int{64, 1 << 20} {
		out := seedOutput(f, chunk, codecZstd)
		b, err := os.ReadFile(out.IndexPath)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(encodeIndex(fuzzID, []PartitionInfo{{}, {Offset: 0, Length: 100, Records: 3, RawBytes: 50}}))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "index")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := ReadIndex(path, fuzzID)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeIndex(fuzzID, out.Partitions), data) {
			t.Fatal("accepted index does not encode back to its bytes")
		}
	})
}

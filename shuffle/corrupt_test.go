package shuffle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
)

// corruptOutput writes a map output with 4 partitions of several chunks.
func corruptOutput(t *testing.T, codec uint8) *MapOutput {
	t.Helper()
	recs := randRecords(rand.New(rand.NewPCG(7, 7)), 4000)
	cfg := WriterConfig{Dir: t.TempDir(), ID: MapOutputID{ShuffleID: 3, MapIndex: 7}, Partitions: 4, ChunkSize: 4096}
	return writeOutput(t, cfg, recs, codec)
}

func patchFile(t *testing.T, path string, fn func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readBlockErr opens and reads a whole block and returns the first error.
func readBlockErr(ref BlockRef) error {
	r, err := OpenBlock(ref, Limits{})
	if err != nil {
		return err
	}
	defer func() { _ = r.Close() }()
	for r.Next() {
	}
	return r.Err()
}

func TestCorruption(t *testing.T) {
	const p = 2
	flip := func(off int64) func(*MapOutput) {
		return func(out *MapOutput) {
			patchFile(t, out.DataPath, func(b []byte) []byte { b[out.Partitions[p].Offset+off] ^= 0x40; return b })
		}
	}
	tests := []struct {
		name    string
		codec   uint8
		damage  func(*MapOutput)
		ref     func(BlockRef) BlockRef
		wantIs  error
		wantMsg string
	}{
		{name: "flipped byte in zstd chunk", codec: codecZstd, damage: flip(headerSize + chunkHdrSize + 20), wantIs: ErrCorrupt, wantMsg: "chunk 0"},
		{name: "flipped byte in later chunk", codec: codecNone, damage: flip(headerSize + 2*(chunkHdrSize+4096) + chunkHdrSize + 100),
			wantIs: ErrCorrupt, wantMsg: "fetch shuffle 3 map 7 attempt 0 partition 2 from agent-1: corrupt shuffle block: checksum mismatch in chunk 2"},
		{name: "flipped byte in chunk header", codec: codecZstd, damage: flip(headerSize + 1), wantIs: ErrCorrupt, wantMsg: "chunk 0"},
		{name: "flipped byte in block header", codec: codecZstd, damage: flip(30), wantIs: ErrCorrupt, wantMsg: "block header checksum mismatch"},
		{name: "wrong attempt", codec: codecZstd, ref: func(r BlockRef) BlockRef { r.ID.Attempt = 1; return r },
			wantIs: ErrCorrupt, wantMsg: "index is shuffle 3 map 7 attempt 0, want shuffle 3 map 7 attempt 1"},
		{name: "truncated data file", codec: codecZstd, damage: func(out *MapOutput) {
			patchFile(t, out.DataPath, func(b []byte) []byte { return b[:out.Partitions[p].Offset+100] })
		}, wantIs: ErrCorrupt, wantMsg: "block ends at"},
		{name: "missing data file", codec: codecZstd, damage: func(out *MapOutput) { _ = os.Remove(out.DataPath) }, wantIs: fs.ErrNotExist},
		{name: "missing index file", codec: codecZstd, damage: func(out *MapOutput) { _ = os.Remove(out.IndexPath) }, wantIs: fs.ErrNotExist},
		{name: "index bad checksum", codec: codecZstd, damage: func(out *MapOutput) {
			patchFile(t, out.IndexPath, func(b []byte) []byte { b[indexHdrSize+p*indexEntrySize+16]++; return b })
		}, wantIs: ErrCorrupt, wantMsg: "index checksum mismatch"},
		{name: "index of another output", codec: codecZstd, damage: func(out *MapOutput) {
			// A block whose index entry does not match it.
			patchFile(t, out.IndexPath, func(b []byte) []byte {
				e := b[indexHdrSize+p*indexEntrySize:]
				binary.LittleEndian.PutUint64(e[16:], binary.LittleEndian.Uint64(e[16:])-1)
				n := len(b) - indexCRCSize
				binary.LittleEndian.PutUint32(b[n:], crc32c(b[:n]))
				return b
			})
		}, wantIs: ErrCorrupt, wantMsg: "does not match its index entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := corruptOutput(t, tt.codec)
			if tt.damage != nil {
				tt.damage(out)
			}
			ref := BlockRef{ID: out.ID, Partition: p, DataPath: out.DataPath, IndexPath: out.IndexPath, Location: "agent-1"}
			if tt.ref != nil {
				ref = tt.ref(ref)
			}
			err := readBlockErr(ref)
			checkFetchError(t, err, ref, tt.wantIs, tt.wantMsg)
			// The other partitions still read, unless the damage is global.
			if tt.damage != nil && strings.Contains(tt.name, "byte in") {
				readAll(t, openBlock(t, out, 1))
			}
		})
	}
}

func checkFetchError(t *testing.T, err error, ref BlockRef, wantIs error, wantMsg string) {
	t.Helper()
	var fe *FetchError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *FetchError", err, err)
	}
	if fe.ID != ref.ID || fe.Partition != ref.Partition || fe.Location != ref.Location {
		t.Fatalf("FetchError names %v partition %d at %q, want %v partition %d at %q",
			fe.ID, fe.Partition, fe.Location, ref.ID, ref.Partition, ref.Location)
	}
	if !errors.Is(err, wantIs) {
		t.Fatalf("error %v does not wrap %v", err, wantIs)
	}
	if !strings.Contains(err.Error(), wantMsg) || !strings.Contains(err.Error(), "partition 2") {
		t.Fatalf("error %q does not mention %q", err, wantMsg)
	}
}

// blockBytes returns the bytes of one block of a map output.
func blockBytes(t testing.TB, out *MapOutput, p int) []byte {
	t.Helper()
	b, err := os.ReadFile(out.DataPath)
	if err != nil {
		t.Fatal(err)
	}
	info := out.Partitions[p]
	return b[info.Offset : info.Offset+info.Length]
}

// The decoder checks a block without its index.
func TestBlockDecoderStream(t *testing.T) {
	out := corruptOutput(t, codecZstd)
	block := blockBytes(t, out, 2)
	errRead := errors.New("connection reset")
	tests := []struct {
		name    string
		rd      io.Reader
		want    MapOutputID
		part    int
		lim     Limits
		wantIs  error
		wantMsg string
	}{
		{name: "good", rd: bytes.NewReader(block), want: out.ID, part: 2},
		{name: "wrong attempt", rd: bytes.NewReader(block), want: MapOutputID{ShuffleID: 3, MapIndex: 7, Attempt: 1}, part: 2,
			wantIs: ErrCorrupt, wantMsg: "block is shuffle 3 map 7 attempt 0 partition 2, want shuffle 3 map 7 attempt 1 partition 2"},
		{name: "wrong partition", rd: bytes.NewReader(block), want: out.ID, part: 1, wantIs: ErrCorrupt, wantMsg: "want shuffle 3 map 7 attempt 0 partition 1"},
		{name: "truncated", rd: bytes.NewReader(block[:len(block)-5]), want: out.ID, part: 2, wantIs: ErrCorrupt, wantMsg: "truncated"},
		{name: "truncated header", rd: bytes.NewReader(block[:10]), want: out.ID, part: 2, wantIs: ErrCorrupt, wantMsg: "block header: truncated"},
		{name: "empty stream", rd: bytes.NewReader(nil), want: out.ID, part: 2, wantIs: ErrCorrupt, wantMsg: "truncated"},
		{name: "read error", rd: io.MultiReader(bytes.NewReader(block[:200]), iotestErrReader{errRead}), want: out.ID, part: 2, wantIs: errRead},
		{name: "block too big", rd: bytes.NewReader(block), want: out.ID, part: 2, lim: Limits{MaxBlockRaw: 100}, wantIs: ErrCorrupt, wantMsg: "exceeds limit"},
		{name: "record too big", rd: bytes.NewReader(block), want: out.ID, part: 2, lim: Limits{MaxRecord: 10}, wantIs: ErrCorrupt, wantMsg: "exceeds limit of 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewBlockDecoder(tt.rd, tt.want, tt.part, tt.lim)
			n := 0
			for r.Next() {
				n++
			}
			if tt.wantIs == nil {
				if r.Err() != nil || int64(n) != out.Partitions[2].Records {
					t.Fatalf("read %d records, err %v", n, r.Err())
				}
				return
			}
			if errors.Is(tt.wantIs, ErrCorrupt) == false && errors.Is(r.Err(), ErrCorrupt) {
				t.Fatalf("I/O error %v reported as corruption", r.Err())
			}
			checkFetchError(t, r.Err(), BlockRef{ID: tt.want, Partition: tt.part}, tt.wantIs, tt.wantMsg)
		})
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// craftBlock returns a block of one zstd chunk with the given stored bytes,
// declaring rawLen raw bytes of one record.
func craftBlock(id MapOutputID, rawLen uint32, stored []byte) []byte {
	h := blockHeader{codec: codecZstd, id: id, chunks: 1, records: 1, rawLen: uint64(rawLen), bodyLen: uint64(chunkHdrSize + len(stored))}
	var hb [headerSize]byte
	h.encode(&hb)
	b := append(hb[:], make([]byte, chunkHdrSize)...)
	binary.LittleEndian.PutUint32(b[headerSize:], rawLen)
	binary.LittleEndian.PutUint32(b[headerSize+4:], uint32(len(stored)))
	return append(b, stored...)
}

// rleFrame returns a zstd frame of blocks RLE blocks of 128 KiB each, whose
// header declares fcs bytes of content (fcsBytes is 0 for no declared size,
// 2 or 4).
func rleFrame(blocks int, fcs uint32, fcsBytes int) []byte {
	const blockSize = 128 << 10
	fhd := map[int]byte{0: 0x00, 2: 0x40, 4: 0x80}[fcsBytes]
	f := []byte{0x28, 0xb5, 0x2f, 0xfd, fhd, 7 << 3} // window 128 KiB
	switch fcsBytes {
	case 2:
		f = binary.LittleEndian.AppendUint16(f, uint16(fcs-256))
	case 4:
		f = binary.LittleEndian.AppendUint32(f, fcs)
	}
	for i := range blocks {
		bh := uint32(blockSize<<3 | 1<<1)
		if i == blocks-1 {
			bh |= 1
		}
		f = append(f, byte(bh), byte(bh>>8), byte(bh>>16), 'a')
	}
	return f
}

// A chunk whose zstd frame inflates far past its declared raw length is
// rejected as corrupt without being decoded into a big buffer.
func TestDecompressionBomb(t *testing.T) {
	id := MapOutputID{ShuffleID: 1}
	tests := []struct {
		name   string
		stored []byte
	}{
		{"frame declares 1 GiB", rleFrame(16, 1<<30, 4)},
		{"frame declares nothing", rleFrame(16, 0, 0)},
		{"frame lies: declares 1 KiB, holds 2 MiB", rleFrame(16, 1024, 2)},
		{"frame lies: declares 1 KiB, holds 2 MiB, 4-byte size", rleFrame(16, 1024, 4)},
		{"skippable frame", []byte{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			block := craftBlock(id, 1024, tt.stored)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			r := NewBlockDecoder(bytes.NewReader(block), id, 0, Limits{})
			for r.Next() {
			}
			runtime.ReadMemStats(&after)
			if !errors.Is(r.Err(), ErrCorrupt) {
				t.Fatalf("error %v, want ErrCorrupt", r.Err())
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
				t.Fatalf("allocated %d bytes for a bomb", alloc)
			}
			t.Logf("%v (allocated %d bytes)", r.Err(), after.TotalAlloc-before.TotalAlloc)
		})
	}
}

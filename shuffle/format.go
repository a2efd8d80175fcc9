package shuffle

import (
	"encoding/binary"
	"hash/crc32"
)

// Layout of a block and of an index file: docs/shuffle.md, "Shuffle block
// format, version 1". Everything is little-endian.
const (
	blockMagic   = "WGSB"
	indexMagic   = "WGSI"
	version1     = 1
	codecNone    = 0
	codecZstd    = 1
	headerSize   = 64 // block header
	chunkHdrSize = 12 // u32 raw_len | u32 stored_len | u32 crc32c(raw)
	recHdrSize   = 8  // u32 key_len | u32 value_len

	indexHdrSize   = 32
	indexEntrySize = 32
	indexCRCSize   = 4

	// maxChunkRaw is the largest raw_len of a chunk a decoder accepts, and so
	// the largest ChunkSize.
	maxChunkRaw = 16 << 20
	// maxPartitions bounds WriterConfig.Partitions, and so an index file to
	// 32 MiB.
	maxPartitions = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// maxStored returns the largest stored_len accepted for a chunk of rawLen
// bytes: zstd adds at most a frame header and 3 bytes per 128 KiB block, far
// less than rawLen/64 + 64.
func maxStored(rawLen uint64) uint64 { return rawLen + rawLen>>6 + 64 }

// blockHeader is the 64-byte header of a block.
type blockHeader struct {
	codec     uint8
	id        MapOutputID
	partition uint32
	chunks    uint32
	records   uint64
	rawLen    uint64
	bodyLen   uint64
}

func (h *blockHeader) encode(b *[headerSize]byte) {
	le := binary.LittleEndian
	*b = [headerSize]byte{}
	copy(b[0:4], blockMagic)
	le.PutUint16(b[4:], version1)
	b[6] = h.codec
	le.PutUint64(b[8:], h.id.ShuffleID)
	le.PutUint32(b[16:], h.id.MapIndex)
	le.PutUint32(b[20:], h.id.Attempt)
	le.PutUint32(b[24:], h.partition)
	le.PutUint32(b[28:], h.chunks)
	le.PutUint64(b[32:], h.records)
	le.PutUint64(b[40:], h.rawLen)
	le.PutUint64(b[48:], h.bodyLen)
	le.PutUint32(b[60:], crc32c(b[:60]))
}

// decode parses and checks the fixed fields of a header: magic, version,
// codec, reserved bytes and checksum. It does not check tags or totals.
func (h *blockHeader) decode(b *[headerSize]byte) error {
	le := binary.LittleEndian
	if string(b[0:4]) != blockMagic {
		return corruptf("bad block magic %q", b[0:4])
	}
	if v := le.Uint16(b[4:]); v != version1 {
		return corruptf("unsupported block version %d", v)
	}
	if got, want := le.Uint32(b[60:]), crc32c(b[:60]); got != want {
		return corruptf("block header checksum mismatch")
	}
	if b[6] != codecNone && b[6] != codecZstd {
		return corruptf("unknown codec %d", b[6])
	}
	if b[7] != 0 || le.Uint32(b[56:]) != 0 {
		return corruptf("reserved header bytes are not zero")
	}
	*h = blockHeader{
		codec:     b[6],
		id:        MapOutputID{ShuffleID: le.Uint64(b[8:]), MapIndex: le.Uint32(b[16:]), Attempt: le.Uint32(b[20:])},
		partition: le.Uint32(b[24:]),
		chunks:    le.Uint32(b[28:]),
		records:   le.Uint64(b[32:]),
		rawLen:    le.Uint64(b[40:]),
		bodyLen:   le.Uint64(b[48:]),
	}
	return nil
}

// check checks the header against the wanted tag and the limits, and that its
// totals are consistent with one another.
func (h *blockHeader) check(want MapOutputID, partition int, maxRaw int64) error {
	if h.id != want || int64(h.partition) != int64(partition) {
		return corruptf("block is %v partition %d, want %v partition %d", h.id, h.partition, want, partition)
	}
	if h.rawLen > uint64(maxRaw) {
		return corruptf("block of %d raw bytes exceeds limit of %d", h.rawLen, maxRaw)
	}
	if h.records > h.rawLen/recHdrSize {
		return corruptf("%d records cannot fit in %d raw bytes", h.records, h.rawLen)
	}
	c := uint64(h.chunks)
	if c > h.rawLen || c < (h.rawLen+maxChunkRaw-1)/maxChunkRaw {
		return corruptf("%d chunks cannot hold %d raw bytes", h.chunks, h.rawLen)
	}
	if h.bodyLen < c*chunkHdrSize || h.bodyLen > c*chunkHdrSize+c*64+h.rawLen+h.rawLen>>6 {
		return corruptf("body of %d bytes cannot hold %d chunks of %d raw bytes", h.bodyLen, h.chunks, h.rawLen)
	}
	return nil
}

// encodeIndex returns the bytes of an index file.
func encodeIndex(id MapOutputID, parts []PartitionInfo) []byte {
	le := binary.LittleEndian
	b := make([]byte, indexHdrSize+indexEntrySize*len(parts)+indexCRCSize)
	copy(b[0:4], indexMagic)
	le.PutUint16(b[4:], version1)
	le.PutUint64(b[8:], id.ShuffleID)
	le.PutUint32(b[16:], id.MapIndex)
	le.PutUint32(b[20:], id.Attempt)
	le.PutUint32(b[24:], uint32(len(parts)))
	for i, p := range parts {
		e := b[indexHdrSize+i*indexEntrySize:]
		le.PutUint64(e[0:], uint64(p.Offset))
		le.PutUint64(e[8:], uint64(p.Length))
		le.PutUint64(e[16:], uint64(p.Records))
		le.PutUint64(e[24:], uint64(p.RawBytes))
	}
	n := len(b) - indexCRCSize
	le.PutUint32(b[n:], crc32c(b[:n]))
	return b
}

// indexHeader checks the fixed fields of an index header and returns the
// number of partitions.
func indexHeader(b []byte) (int, error) {
	le := binary.LittleEndian
	if len(b) < indexHdrSize {
		return 0, corruptf("index of %d bytes is shorter than its header", len(b))
	}
	if string(b[0:4]) != indexMagic {
		return 0, corruptf("bad index magic %q", b[0:4])
	}
	if v := le.Uint16(b[4:]); v != version1 {
		return 0, corruptf("unsupported index version %d", v)
	}
	if le.Uint16(b[6:]) != 0 || le.Uint32(b[28:]) != 0 {
		return 0, corruptf("reserved index bytes are not zero")
	}
	n := le.Uint32(b[24:])
	if n < 1 || n > maxPartitions {
		return 0, corruptf("index has %d partitions", n)
	}
	return int(n), nil
}

// decodeIndex parses and validates a whole index file.
func decodeIndex(b []byte, want MapOutputID) ([]PartitionInfo, error) {
	le := binary.LittleEndian
	n, err := indexHeader(b)
	if err != nil {
		return nil, err
	}
	if size := indexHdrSize + n*indexEntrySize + indexCRCSize; len(b) != size {
		return nil, corruptf("index of %d partitions is %d bytes, want %d", n, len(b), size)
	}
	end := len(b) - indexCRCSize
	if le.Uint32(b[end:]) != crc32c(b[:end]) {
		return nil, corruptf("index checksum mismatch")
	}
	id := MapOutputID{ShuffleID: le.Uint64(b[8:]), MapIndex: le.Uint32(b[16:]), Attempt: le.Uint32(b[20:])}
	if id != want {
		return nil, corruptf("index is %v, want %v", id, want)
	}
	parts := make([]PartitionInfo, n)
	var next uint64 // first byte after the previous block
	for i := range parts {
		e := b[indexHdrSize+i*indexEntrySize:]
		off, length, recs, raw := le.Uint64(e[0:]), le.Uint64(e[8:]), le.Uint64(e[16:]), le.Uint64(e[24:])
		if err := checkEntry(off, length, recs, raw, next); err != nil {
			return nil, corruptf("index partition %d: %v", i, err)
		}
		if length > 0 {
			next = off + length
		}
		parts[i] = PartitionInfo{Offset: int64(off), Length: int64(length), Records: int64(recs), RawBytes: int64(raw)}
	}
	return parts, nil
}

type entryError string

func (e entryError) Error() string { return string(e) }

// checkEntry checks one index entry; blocks must follow one another in
// partition order without overlapping.
func checkEntry(off, length, recs, raw, next uint64) error {
	const maxOff = 1 << 62
	switch {
	case length == 0 && (off != 0 || recs != 0 || raw != 0):
		return entryError("empty partition with a non-zero offset, record count or size")
	case length == 0:
		return nil
	case length < headerSize || off > maxOff || length > maxOff:
		return entryError("impossible offset or length")
	case off < next:
		return entryError("block overlaps the previous one")
	case recs == 0 || recs > raw/recHdrSize:
		return entryError("impossible record count")
	case length-headerSize < raw/maxChunkRaw*chunkHdrSize:
		return entryError("block too short for its raw size")
	}
	return nil
}

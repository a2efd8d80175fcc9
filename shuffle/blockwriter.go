package shuffle

import (
	"encoding/binary"
	"io"

	"github.com/klauspost/compress/zstd"
)

// blockWriter writes blocks one after another into a data file. A block's
// header is written last, at the block's start, once its totals are known.
type blockWriter struct {
	w         io.WriterAt
	enc       *zstd.Encoder
	codec     uint8
	chunkSize int
	off       int64 // end of the bytes written so far

	hdr   blockHeader
	start int64  // offset of the current block
	raw   []byte // raw bytes of the current chunk
	out   []byte // chunk header and stored bytes of the current chunk
	hb    [headerSize]byte
}

func (bw *blockWriter) begin(id MapOutputID, p int) {
	bw.hdr = blockHeader{codec: bw.codec, id: id, partition: uint32(p)}
	bw.start = bw.off
	bw.off += headerSize
	// The chunk's buffer grows with what is written, up to chunkSize: a
	// tiny task's commit does not clear and fault in a whole chunk (1 MiB)
	// for a few bytes.
	bw.raw = bw.raw[:0]
}

// writeRecord appends one encoded record to the block, splitting it across
// chunks where a chunk fills up.
func (bw *blockWriter) writeRecord(rec []byte) error {
	bw.hdr.records++
	bw.hdr.rawLen += uint64(len(rec))
	for len(rec) > 0 {
		n := min(bw.chunkSize-len(bw.raw), len(rec))
		bw.raw = append(bw.raw, rec[:n]...)
		rec = rec[n:]
		if len(bw.raw) == bw.chunkSize {
			if err := bw.flushChunk(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (bw *blockWriter) flushChunk() error {
	bw.out = append(bw.out[:0], make([]byte, chunkHdrSize)...)
	if bw.codec == codecZstd {
		bw.out = bw.enc.EncodeAll(bw.raw, bw.out)
	} else {
		bw.out = append(bw.out, bw.raw...)
	}
	le := binary.LittleEndian
	le.PutUint32(bw.out[0:], uint32(len(bw.raw)))
	le.PutUint32(bw.out[4:], uint32(len(bw.out)-chunkHdrSize))
	le.PutUint32(bw.out[8:], crc32c(bw.raw))
	if _, err := bw.w.WriteAt(bw.out, bw.off); err != nil {
		return err
	}
	bw.off += int64(len(bw.out))
	bw.hdr.bodyLen += uint64(len(bw.out))
	bw.hdr.chunks++
	bw.raw = bw.raw[:0]
	return nil
}

// end finishes the current block and describes it. A block without records
// is not written at all.
func (bw *blockWriter) end() (PartitionInfo, error) {
	if bw.hdr.records == 0 {
		bw.off = bw.start
		return PartitionInfo{}, nil
	}
	if len(bw.raw) > 0 {
		if err := bw.flushChunk(); err != nil {
			return PartitionInfo{}, err
		}
	}
	bw.hdr.encode(&bw.hb)
	if _, err := bw.w.WriteAt(bw.hb[:], bw.start); err != nil {
		return PartitionInfo{}, err
	}
	return PartitionInfo{
		Offset:   bw.start,
		Length:   bw.off - bw.start,
		Records:  int64(bw.hdr.records),
		RawBytes: int64(bw.hdr.rawLen),
	}, nil
}

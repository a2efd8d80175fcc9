package shuffle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// nextChunk reads, decompresses and verifies the next chunk into r.chunk.
func (r *BlockReader) nextChunk() error {
	i := r.chunks
	if i == r.hdr.chunks {
		return corruptf("record %d runs past the last chunk", r.records)
	}
	if _, err := io.ReadFull(r.src, r.ch[:]); err != nil {
		return chunkErr(i, err)
	}
	le := binary.LittleEndian
	rawLen, storedLen, sum := le.Uint32(r.ch[0:]), le.Uint32(r.ch[4:]), le.Uint32(r.ch[8:])
	switch {
	case rawLen == 0 || rawLen > maxChunkRaw || uint64(rawLen) > r.hdr.rawLen-r.loaded:
		return corruptf("chunk %d: raw length %d out of range", i, rawLen)
	case r.hdr.codec == codecNone && storedLen != rawLen,
		r.hdr.codec == codecZstd && (storedLen == 0 || uint64(storedLen) > maxStored(uint64(rawLen))):
		return corruptf("chunk %d: stored length %d for raw length %d", i, storedLen, rawLen)
	case r.body+chunkHdrSize+uint64(storedLen) > r.hdr.bodyLen:
		return corruptf("chunk %d overruns the block body", i)
	}
	var err error
	if r.stored, err = readGrow(r.src, r.stored, int(storedLen)); err != nil {
		return chunkErr(i, err)
	}
	if r.hdr.codec == codecNone {
		r.chunk = r.stored
	} else if r.chunk, err = r.decompress(r.stored, int(rawLen)); err != nil {
		return corruptf("chunk %d: %v", i, err)
	}
	if crc32c(r.chunk) != sum {
		return corruptf("checksum mismatch in chunk %d", i)
	}
	r.chunks++
	r.body += chunkHdrSize + uint64(storedLen)
	r.loaded += uint64(rawLen)
	r.pos = 0
	return nil
}

func chunkErr(i uint32, err error) error {
	return readErr(fmt.Sprintf("chunk %d", i), err)
}

var (
	errFrameSize = errors.New("zstd frame content size does not match the chunk's raw length")
	errFrameKind = errors.New("not a plain zstd frame")
)

// decompress decodes one zstd frame of exactly rawLen bytes into a buffer of
// capacity rawLen. It checks the frame header first, and the decoder stops
// at the buffer's capacity, so a frame that would inflate past rawLen (a
// decompression bomb) is rejected without being decoded.
func (r *BlockReader) decompress(stored []byte, rawLen int) ([]byte, error) {
	var h zstd.Header
	if err := h.Decode(stored); err != nil {
		return nil, err
	}
	if h.Skippable || h.DictionaryID != 0 {
		return nil, errFrameKind
	}
	if !h.HasFCS || h.FrameContentSize != uint64(rawLen) {
		return nil, errFrameSize
	}
	if !h.SingleSegment && h.WindowSize > maxChunkRaw {
		return nil, zstd.ErrWindowSizeExceeded
	}
	if r.dec == nil {
		d, err := getDecoder()
		if err != nil {
			return nil, err
		}
		r.dec = d
	}
	if cap(r.chunkBuf) < rawLen {
		r.chunkBuf = make([]byte, 0, max(rawLen, 2*cap(r.chunkBuf)))
	}
	out, err := r.dec.DecodeAll(stored, r.chunkBuf[:0:rawLen])
	if err != nil {
		return nil, err
	}
	if len(out) != rawLen {
		return nil, errFrameSize
	}
	return out, nil
}

// readGrow reads n bytes into buf, growing it as the bytes arrive, so a
// length field that lies costs at most about twice the bytes really there.
func readGrow(rd io.Reader, buf []byte, n int) ([]byte, error) {
	buf = buf[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(n, max(2*cap(buf), 64<<10)))
			copy(nb, buf)
			buf = nb
		}
		end := min(n, cap(buf))
		if _, err := io.ReadFull(rd, buf[len(buf):end]); err != nil {
			return nil, err
		}
		buf = buf[:end]
	}
	return buf, nil
}

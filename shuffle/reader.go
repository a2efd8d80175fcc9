package shuffle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Limits bound what a reader accepts, and so the memory it uses. A zero (or
// negative) field means its default.
type Limits struct {
	MaxBlockRaw int64 // largest total uncompressed block accepted; 0 means 4 GiB
	MaxRecord   int64 // largest single record (key+value) accepted; 0 means 256 MiB
}

const (
	defaultMaxBlockRaw = 4 << 30
	defaultMaxRecord   = 256 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxBlockRaw <= 0 {
		l.MaxBlockRaw = defaultMaxBlockRaw
	}
	if l.MaxRecord <= 0 {
		l.MaxRecord = defaultMaxRecord
	}
	return l
}

// decoders holds idle zstd decoders. A decoder is created without a reader,
// so it starts no goroutines; it is only used through DecodeAll.
var decoders sync.Pool

func getDecoder() (*zstd.Decoder, error) {
	if d, ok := decoders.Get().(*zstd.Decoder); ok {
		return d, nil
	}
	return zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(maxChunkRaw),
		zstd.WithDecoderMaxWindow(maxChunkRaw),
		zstd.WithDecodeAllCapLimit(true), // never decode past cap(dst)
		zstd.IgnoreChecksum(true))        // each chunk carries a crc32c
}

// BlockReader reads the records of one block in key order. Its Err is nil at
// a clean end and a *FetchError otherwise. A BlockReader is not safe for
// concurrent use.
type BlockReader struct {
	src    io.Reader
	closer io.Closer // the data file, if OpenBlock opened one
	lim    Limits
	fe     FetchError // template for errors
	expect *PartitionInfo

	started, done bool
	err           *FetchError

	hdr                    blockHeader
	dec                    *zstd.Decoder
	chunk                  []byte // raw bytes of the current chunk
	pos                    int    // read position in chunk
	chunkBuf, stored, span []byte
	chunks                 uint32 // chunks read
	body, loaded, consumed uint64 // body bytes read, raw bytes decoded, raw bytes of returned records
	records                uint64 // records returned
	key, value             []byte
	hb                     [headerSize]byte
	rh                     [recHdrSize]byte
	ch                     [chunkHdrSize]byte
}

// CloseWith makes Close close c too: the file a decoder reads a block
// from, when its caller opened it.
func (r *BlockReader) CloseWith(c io.Closer) { r.closer = c }

// SetLocation names where the block comes from (an agent's address), for
// the FetchErrors that the reader returns. A decoder of a network stream
// calls it before the first Next.
func (r *BlockReader) SetLocation(loc string) { r.fe.Location = loc }

// NewBlockDecoder returns a reader of the block that rd yields: its header,
// then its chunks. It reads exactly the block's bytes, no more. The block must
// carry the tag want and partition; anything else is an error wrapping
// ErrCorrupt. It is the network path; OpenBlock uses it on a section of a
// data file. Its errors have an empty Location.
func NewBlockDecoder(rd io.Reader, want MapOutputID, partition int, lim Limits) *BlockReader {
	return &BlockReader{
		src: rd,
		lim: lim.withDefaults(),
		fe:  FetchError{ID: want, Partition: partition},
	}
}

// Next advances to the next record. It returns false at the end of the block
// or on an error.
func (r *BlockReader) Next() bool {
	if r.done {
		return false
	}
	if !r.started {
		r.started = true
		if err := r.readHeader(); err != nil {
			return r.fail(err)
		}
	}
	if r.records == r.hdr.records {
		if err := r.finish(); err != nil {
			return r.fail(err)
		}
		r.release()
		return false
	}
	if err := r.readRecord(); err != nil {
		return r.fail(err)
	}
	r.records++
	return true
}

// Key returns the key of the current record, valid until the next Next.
func (r *BlockReader) Key() []byte { return r.key }

// Value returns the value of the current record, valid until the next Next.
func (r *BlockReader) Value() []byte { return r.value }

// Err returns nil after a clean end, and a *FetchError otherwise.
func (r *BlockReader) Err() error {
	if r.err == nil {
		return nil
	}
	return r.err
}

// Close releases the reader and closes its data file, if any.
func (r *BlockReader) Close() error {
	r.release()
	r.done = true
	if r.closer == nil {
		return nil
	}
	c := r.closer
	r.closer = nil
	return c.Close()
}

func (r *BlockReader) fail(err error) bool {
	fe := r.fe
	fe.Err = err
	r.err = &fe
	r.release()
	return false
}

// release gives back the decoder and the buffers.
func (r *BlockReader) release() {
	r.done = true
	if r.dec != nil {
		decoders.Put(r.dec)
		r.dec = nil
	}
	r.chunk, r.chunkBuf, r.stored, r.span = nil, nil, nil, nil
	r.key, r.value = nil, nil
}

func (r *BlockReader) readHeader() error {
	if _, err := io.ReadFull(r.src, r.hb[:]); err != nil {
		return readErr("block header", err)
	}
	if err := r.hdr.decode(&r.hb); err != nil {
		return err
	}
	if err := r.hdr.check(r.fe.ID, r.fe.Partition, r.lim.MaxBlockRaw); err != nil {
		return err
	}
	if e := r.expect; e != nil && (uint64(e.Records) != r.hdr.records || uint64(e.RawBytes) != r.hdr.rawLen ||
		uint64(e.Length) != headerSize+r.hdr.bodyLen) {
		return corruptf("block header (%d records, %d raw bytes, %d bytes) does not match its index entry (%d, %d, %d)",
			r.hdr.records, r.hdr.rawLen, headerSize+r.hdr.bodyLen, e.Records, e.RawBytes, e.Length)
	}
	return nil
}

// finish checks that the block ended where its header says.
func (r *BlockReader) finish() error {
	if r.pos != len(r.chunk) || r.chunks != r.hdr.chunks || r.loaded != r.hdr.rawLen || r.body != r.hdr.bodyLen {
		return corruptf("bytes left after the last record (chunk %d of %d, %d of %d raw bytes)",
			r.chunks, r.hdr.chunks, r.consumed, r.hdr.rawLen)
	}
	return nil
}

// readRecord reads the next record, which may span chunks.
func (r *BlockReader) readRecord() error {
	hb, err := r.read(recHdrSize, r.rh[:0])
	if err != nil {
		return err
	}
	klen := uint64(binary.LittleEndian.Uint32(hb))
	size := klen + uint64(binary.LittleEndian.Uint32(hb[4:]))
	if size > uint64(r.lim.MaxRecord) {
		return corruptf("record %d of %d bytes exceeds limit of %d", r.records, size, r.lim.MaxRecord)
	}
	if size > r.hdr.rawLen-r.consumed {
		return corruptf("record %d of %d bytes overruns the block", r.records, size)
	}
	rec, err := r.read(int(size), r.span[:0])
	if err != nil {
		return err
	}
	r.key, r.value = rec[:klen:klen], rec[klen:size:size] // appending to them cannot clobber the chunk
	return nil
}

// read returns the next n raw bytes of the record stream. They alias the
// current chunk when it holds them all, and are gathered into buf otherwise.
func (r *BlockReader) read(n int, buf []byte) ([]byte, error) {
	r.consumed += uint64(n)
	if len(r.chunk)-r.pos >= n {
		b := r.chunk[r.pos : r.pos+n]
		r.pos += n
		return b, nil
	}
	buf = append(buf, r.chunk[r.pos:]...)
	r.pos = len(r.chunk)
	for len(buf) < n {
		if err := r.nextChunk(); err != nil {
			return nil, err
		}
		k := min(n-len(buf), len(r.chunk))
		buf = append(buf, r.chunk[:k]...)
		r.pos = k
	}
	if n > recHdrSize {
		r.span = buf // keep the grown buffer
	}
	return buf, nil
}

// readErr describes a failed read of what: a short read means the block is
// truncated, anything else is an I/O error.
func readErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corruptf("%s: truncated", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

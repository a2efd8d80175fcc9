package shuffle

import (
	"encoding/binary"
	"fmt"
	"math"
)

// batchIter walks the records of a batch (docs/abi.md: u32le count | records).
type batchIter struct {
	b     []byte // the records not yet visited
	left  uint32 // records not yet visited
	index int    // of the record last returned
	rec   []byte // whole encoded record last returned
	klen  int
}

// newBatchIter checks that the batch is well-formed: its count and lengths
// match its bytes exactly.
func newBatchIter(batch []byte) (batchIter, error) {
	if len(batch) < 4 {
		return batchIter{}, fmt.Errorf("batch of %d bytes has no count", len(batch))
	}
	n := binary.LittleEndian.Uint32(batch)
	rest := batch[4:]
	if uint64(n) > uint64(len(rest))/recHdrSize {
		return batchIter{}, fmt.Errorf("batch count %d cannot fit in %d bytes", n, len(rest))
	}
	// Validate everything first, so a caller never acts on half a batch.
	b := rest
	for i := range n {
		size, ok := recordSize(b)
		if !ok {
			return batchIter{}, fmt.Errorf("batch record %d of %d overruns the batch", i, n)
		}
		b = b[size:]
	}
	if len(b) != 0 {
		return batchIter{}, fmt.Errorf("batch has %d bytes after its %d records", len(b), n)
	}
	return batchIter{b: rest, left: n, index: -1}, nil
}

// recordSize returns the size of the encoded record at the start of b.
func recordSize(b []byte) (int, bool) {
	if len(b) < recHdrSize {
		return 0, false
	}
	size := uint64(recHdrSize) + uint64(binary.LittleEndian.Uint32(b)) + uint64(binary.LittleEndian.Uint32(b[4:]))
	if size > uint64(len(b)) {
		return 0, false
	}
	return int(size), true
}

// next advances to the next record of a batch checked by newBatchIter.
func (it *batchIter) next() bool {
	if it.left == 0 {
		return false
	}
	size, _ := recordSize(it.b)
	it.rec, it.b = it.b[:size], it.b[size:]
	it.klen = int(binary.LittleEndian.Uint32(it.rec))
	it.left--
	it.index++
	return true
}

func (it *batchIter) key() []byte   { return it.rec[recHdrSize : recHdrSize+it.klen] }
func (it *batchIter) value() []byte { return it.rec[recHdrSize+it.klen:] }

// appendRecord appends the record encoding of key and value to b.
func appendRecord(b, key, value []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(key)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(value)))
	b = append(b, key...)
	return append(b, value...)
}

// checkRecordLen reports whether key and value fit the record encoding.
func checkRecordLen(key, value []byte) error {
	if uint64(len(key)) > math.MaxUint32 || uint64(len(value)) > math.MaxUint32 {
		return fmt.Errorf("record with a %d-byte key and a %d-byte value is too large", len(key), len(value))
	}
	return nil
}

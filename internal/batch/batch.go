// Package batch is the record batch encoding of the guest ABI
// (docs/abi.md): a u32le count followed by that many records, each a u32le
// key length, a u32le value length, the key and the value. The host side of
// the ABI, the shuffle writer and the executor all speak it through this
// package; the guest SDKs carry their own copy, as guests import nothing of
// the host.
package batch

import (
	"encoding/binary"
	"fmt"
	"math"
)

// HeaderSize is the size of a record's two length fields.
const HeaderSize = 8

// Scan checks that b is a well-formed batch, its count and lengths matching
// its bytes exactly, and returns the record count and the offset of the last
// record (len(b) when there is none).
func Scan(b []byte) (count uint32, last int, err error) {
	if len(b) < 4 {
		return 0, 0, fmt.Errorf("batch of %d bytes has no record count", len(b))
	}
	count = binary.LittleEndian.Uint32(b)
	if uint64(count) > uint64(len(b)-4)/HeaderSize {
		return 0, 0, fmt.Errorf("batch count %d cannot fit in %d bytes", count, len(b)-4)
	}
	off, last := 4, len(b)
	for i := range count {
		size, ok := RecordSize(b[off:])
		if !ok {
			return 0, 0, fmt.Errorf("record %d of %d overruns the batch", i, count)
		}
		last = off
		off += size
	}
	if off != len(b) {
		return 0, 0, fmt.Errorf("batch has %d bytes after its %d records", len(b)-off, count)
	}
	return count, last, nil
}

// RecordSize returns the size of the encoded record at the start of b.
func RecordSize(b []byte) (int, bool) {
	if len(b) < HeaderSize {
		return 0, false
	}
	size := uint64(HeaderSize) + uint64(binary.LittleEndian.Uint32(b)) + uint64(binary.LittleEndian.Uint32(b[4:]))
	if size > uint64(len(b)) {
		return 0, false
	}
	return int(size), true
}

// AppendRecord appends the encoding of one record to b.
func AppendRecord(b, key, value []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(key)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(value)))
	b = append(b, key...)
	return append(b, value...)
}

// CheckRecord reports whether key and value fit the encoding's lengths.
func CheckRecord(key, value []byte) error {
	if uint64(len(key)) > math.MaxUint32 || uint64(len(value)) > math.MaxUint32 {
		return fmt.Errorf("record with a %d-byte key and a %d-byte value is too large", len(key), len(value))
	}
	return nil
}

// Count is the record count of a batch.
func Count(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

// Iter walks the records of a batch that Open has checked.
type Iter struct {
	b     []byte // records not yet visited
	left  uint32
	index int
	rec   []byte
	klen  int
}

// Open checks a batch and returns an iterator over its records, so that a
// caller never acts on half of a malformed batch.
func Open(b []byte) (Iter, error) {
	n, _, err := Scan(b)
	if err != nil {
		return Iter{}, err
	}
	return Iter{b: b[4:], left: n, index: -1}, nil
}

// Checked returns an iterator over a batch that Scan (or Open) has already
// accepted, such as every batch a guest call returns, without scanning it
// again. On a batch that was not checked it may panic.
func Checked(b []byte) Iter {
	return Iter{b: b[4:], left: Count(b), index: -1}
}

// Next advances to the next record.
func (it *Iter) Next() bool {
	if it.left == 0 {
		return false
	}
	size, _ := RecordSize(it.b)
	it.rec, it.b = it.b[:size], it.b[size:]
	it.klen = int(binary.LittleEndian.Uint32(it.rec))
	it.left--
	it.index++
	return true
}

// Key is the current record's key, a view of the batch.
func (it *Iter) Key() []byte { return it.rec[HeaderSize : HeaderSize+it.klen] }

// Value is the current record's value, a view of the batch.
func (it *Iter) Value() []byte { return it.rec[HeaderSize+it.klen:] }

// Record is the current record's whole encoding.
func (it *Iter) Record() []byte { return it.rec }

// Index is the current record's position in the batch.
func (it *Iter) Index() int { return it.index }

// Builder accumulates records into a batch.
type Builder struct {
	buf   []byte
	count uint32
	limit int
}

// NewBuilder returns a builder whose Full reports true past limit bytes.
func NewBuilder(limit int) *Builder {
	b := &Builder{limit: limit}
	b.Reset()
	return b
}

// Reset empties the builder, keeping its memory.
func (b *Builder) Reset() {
	b.buf = append(b.buf[:0], 0, 0, 0, 0)
	b.count = 0
}

// Add appends one record.
func (b *Builder) Add(k, v []byte) {
	b.buf = AppendRecord(b.buf, k, v)
	b.count++
}

// Len is the number of records added since Reset.
func (b *Builder) Len() int { return int(b.count) }

// Full reports whether the batch has reached its size limit.
func (b *Builder) Full() bool { return len(b.buf) >= b.limit }

// Bytes finishes the batch. It is valid until the next Add or Reset.
func (b *Builder) Bytes() []byte {
	binary.LittleEndian.PutUint32(b.buf, b.count)
	return b.buf
}

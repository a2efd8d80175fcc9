package executor

import "encoding/binary"

// batchBuilder accumulates records in the batch encoding of docs/abi.md.
type batchBuilder struct {
	buf   []byte
	count uint32
	limit int
}

func newBatchBuilder(limit int) *batchBuilder {
	b := &batchBuilder{limit: limit}
	b.reset()
	return b
}

func (b *batchBuilder) reset() {
	b.buf = append(b.buf[:0], 0, 0, 0, 0)
	b.count = 0
}

func (b *batchBuilder) add(k, v []byte) {
	b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(len(k)))
	b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(len(v)))
	b.buf = append(b.buf, k...)
	b.buf = append(b.buf, v...)
	b.count++
}

// full reports whether the batch has reached its size.
func (b *batchBuilder) full() bool { return len(b.buf) >= b.limit }

func (b *batchBuilder) empty() bool { return b.count == 0 }

// bytes finishes the batch; it is valid until the next add or reset.
func (b *batchBuilder) bytes() []byte {
	binary.LittleEndian.PutUint32(b.buf, b.count)
	return b.buf
}

// eachRecord calls fn for every record of a well-formed batch.
func eachRecord(batch []byte, fn func(k, v []byte) error) error {
	n := binary.LittleEndian.Uint32(batch)
	p := batch[4:]
	for range n {
		kl, vl := binary.LittleEndian.Uint32(p), binary.LittleEndian.Uint32(p[4:])
		if err := fn(p[8:8+kl], p[8+kl:8+kl+vl]); err != nil {
			return err
		}
		p = p[8+kl+vl:]
	}
	return nil
}

func batchCount(batch []byte) int64 { return int64(binary.LittleEndian.Uint32(batch)) }

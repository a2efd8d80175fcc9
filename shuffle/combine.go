package shuffle

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"github.com/wasmgrid/wasmgrid/internal/batch"
)

// combiner feeds the sorted records of one partition to a CombineFunc in
// pieces of about limit input bytes. A run of equal keys may straddle two
// pieces, so the last record of each output is not emitted but carried to the
// front of the next piece; it is emitted when the partition ends.
type combiner struct {
	fn    CombineFunc
	part  int
	limit int
	emit  func(rec []byte) error

	batch []byte // u32 count | records of the current piece
	n     uint32 // records in batch
	carry bool   // batch starts with the last record of the previous output
	last  []byte // key of the last record emitted in this partition
	any   bool   // whether a record was emitted in this partition
}

func (c *combiner) reset(fn CombineFunc, part, limit int, emit func([]byte) error) {
	c.fn, c.part, c.limit, c.emit = fn, part, limit, emit
	c.batch = append(c.batch[:0], 0, 0, 0, 0)
	c.n, c.carry, c.any = 0, false, false
	c.last = c.last[:0]
}

func (c *combiner) carried() uint32 {
	if c.carry {
		return 1
	}
	return 0
}

func (c *combiner) add(rec []byte) error {
	if c.n > c.carried() && len(c.batch)-4+len(rec) > c.limit {
		if err := c.flush(); err != nil {
			return err
		}
	}
	c.batch = append(c.batch, rec...)
	c.n++
	return nil
}

// finish combines what is left and emits the carried record.
func (c *combiner) finish() error {
	if c.n > c.carried() {
		if err := c.flush(); err != nil {
			return err
		}
	}
	if c.carry {
		return c.emit(c.batch[4:])
	}
	return nil
}

// flush combines the current piece, emits all of its output but the last
// record, and makes that record the start of the next piece.
func (c *combiner) flush() error {
	binary.LittleEndian.PutUint32(c.batch, c.n)
	out, err := c.fn(c.batch)
	if err != nil {
		return fmt.Errorf("shuffle: combine partition %d: %w", c.part, err)
	}
	it, err := batch.Open(out)
	if err != nil {
		return fmt.Errorf("shuffle: combine partition %d returned a malformed batch (%w): %w", c.part, ErrBadCombine, err)
	}
	prev, havePrev := c.last, c.any
	var pending, pendingKey, emittedKey []byte // pending: the previous output record, not yet emitted
	for it.Next() {
		if havePrev && bytes.Compare(it.Key(), prev) < 0 {
			return fmt.Errorf("shuffle: combine partition %d: output record %d is out of key order: %w", c.part, it.Index(), ErrBadCombine)
		}
		if pending != nil {
			if err := c.emit(pending); err != nil {
				return err
			}
			emittedKey = pendingKey
		}
		prev, havePrev = it.Key(), true
		pending, pendingKey = it.Record(), it.Key()
	}
	if emittedKey != nil {
		c.last, c.any = append(c.last[:0], emittedKey...), true
	}
	if pending == nil {
		c.batch, c.n, c.carry = c.batch[:4], 0, false
		return nil
	}
	// pending may alias c.batch; append moves overlapping bytes correctly.
	c.batch = append(c.batch[:4], pending...)
	c.n, c.carry = 1, true
	return nil
}

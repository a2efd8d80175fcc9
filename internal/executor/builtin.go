package executor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/wasmgrid/wasmgrid/internal/batch"
)

// The host's own shuffle transforms, for operators without guest
// functions (planner.ShuffleDep.Builtin).

// distinctKey is the shuffle key of a record for distinct: u32 LE length
// of the key, the key, the value.
func distinctKey(dst, key, value []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(key)))
	dst = append(dst, key...)
	return append(dst, value...)
}

// splitDistinctKey undoes distinctKey.
func splitDistinctKey(k []byte) (key, value []byte, err error) {
	if len(k) < 4 {
		return nil, nil, errors.New("distinct: shuffle key shorter than its length prefix")
	}
	n := binary.LittleEndian.Uint32(k)
	if uint64(n) > uint64(len(k)-4) {
		return nil, nil, errors.New("distinct: shuffle key's length prefix runs past it")
	}
	return k[4 : 4+n], k[4+n:], nil
}

// rekeyDistinct turns a batch of records into records keyed by their
// whole content, with empty values.
func rekeyDistinct(b []byte) []byte {
	out := batch.NewBuilder(len(b) + 4*int(batch.Count(b)))
	var k []byte
	it := batch.Checked(b)
	for it.Next() {
		k = distinctKey(k[:0], it.Key(), it.Value())
		out.Add(k, nil)
	}
	return out.Bytes()
}

// combineFirst keeps the first record of each run of equal keys of a
// sorted batch: the map-side combiner of distinct.
func combineFirst(b []byte) ([]byte, error) {
	out := batch.NewBuilder(len(b))
	var prev []byte
	first := true
	it := batch.Checked(b)
	for it.Next() {
		if !first && bytes.Equal(it.Key(), prev) {
			continue
		}
		first = false
		prev = append(prev[:0], it.Key()...)
		out.Add(it.Key(), it.Value())
	}
	return out.Bytes(), nil
}

// AppendGroupedValues encodes a list of values as a group_by_key record's
// value (docs/abi.md, "Grouped values"): u32 LE count, then each value as
// u32 LE length and bytes.
func AppendGroupedValues(dst []byte, values [][]byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(values)))
	for _, v := range values {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(v)))
		dst = append(dst, v...)
	}
	return dst
}

// keyRun is the values of one key of a merged input.
type keyRun struct {
	key  []byte
	vals [][]byte
	ok   bool // a run was read
}

// nextRun reads the run of equal keys that starts at the input's current
// record; more reports whether the input has a current record.
func nextRun(in keyed, more *bool) (keyRun, error) {
	var r keyRun
	if !*more {
		return r, in.Err()
	}
	r.key, r.ok = bytes.Clone(in.Key()), true
	for *more && bytes.Equal(in.Key(), r.key) {
		r.vals = append(r.vals, bytes.Clone(in.Value()))
		*more = in.Next()
	}
	return r, in.Err()
}

// mergeCogroup merges two inputs sorted by key into one record per key of
// either: its value lists two lists, the left values and the right values
// (grouped-values encoding, nested; a side without the key has an empty
// list).
func mergeCogroup(left, right keyed, emit func(key, value []byte) error) error {
	lmore, rmore := left.Next(), right.Next()
	l, err := nextRun(left, &lmore)
	if err != nil {
		return err
	}
	r, err := nextRun(right, &rmore)
	if err != nil {
		return err
	}
	var lenc, renc, enc []byte
	for l.ok || r.ok {
		c := 0
		switch {
		case !r.ok:
			c = -1
		case !l.ok:
			c = 1
		default:
			c = bytes.Compare(l.key, r.key)
		}
		key := l.key
		var lv, rv [][]byte
		if c <= 0 {
			lv = l.vals
		}
		if c >= 0 {
			key, rv = r.key, r.vals
		}
		lenc = AppendGroupedValues(lenc[:0], lv)
		renc = AppendGroupedValues(renc[:0], rv)
		enc = AppendGroupedValues(enc[:0], [][]byte{lenc, renc})
		if err := emit(key, enc); err != nil {
			return err
		}
		if c <= 0 {
			if l, err = nextRun(left, &lmore); err != nil {
				return err
			}
		}
		if c >= 0 {
			if r, err = nextRun(right, &rmore); err != nil {
				return err
			}
		}
	}
	return nil
}

// reduceSide folds a merged shuffle input, in key order, for a builtin
// shuffle: emit receives the records the stage's steps see.
type reduceSide struct {
	kind  string // "group", "distinct" or "count"; others pass records through
	count uint64 // "count": the sum so far for key
	emit  func(key, value []byte) error
	key   []byte
	vals  [][]byte
	have  bool
	enc   []byte
}

func (r *reduceSide) add(key, value []byte) error {
	switch r.kind {
	case "distinct":
		if r.have && bytes.Equal(key, r.key) {
			return nil
		}
		r.key, r.have = append(r.key[:0], key...), true
		k, v, err := splitDistinctKey(key)
		if err != nil {
			return err
		}
		return r.emit(k, v)
	case "count":
		n, err := parseCount(value)
		if err != nil {
			return err
		}
		if r.have && bytes.Equal(key, r.key) {
			r.count += n
			return nil
		}
		if err := r.flush(); err != nil {
			return err
		}
		r.key, r.count, r.have = append(r.key[:0], key...), n, true
		return nil
	case "group":
		if r.have && !bytes.Equal(key, r.key) {
			if err := r.flush(); err != nil {
				return err
			}
		}
		if !r.have {
			r.key, r.have = append(r.key[:0], key...), true
		}
		r.vals = append(r.vals, bytes.Clone(value))
		return nil
	default: // a pure repartitioning
		return r.emit(key, value)
	}
}

// flush emits the group being gathered.
func (r *reduceSide) flush() error {
	if !r.have {
		return nil
	}
	if r.kind == "count" {
		r.enc = strconv.AppendUint(r.enc[:0], r.count, 10)
		r.have = false
		return r.emit(r.key, r.enc)
	}
	if r.kind != "group" {
		return nil
	}
	r.enc = AppendGroupedValues(r.enc[:0], r.vals)
	err := r.emit(r.key, r.enc)
	r.vals, r.have = r.vals[:0], false
	return err
}

// countOne turns a batch into records of the same keys with value "1".
func countOne(b []byte) []byte {
	out := batch.NewBuilder(len(b))
	it := batch.Checked(b)
	one := []byte("1")
	for it.Next() {
		out.Add(it.Key(), one)
	}
	return out.Bytes()
}

// parseCount reads a decimal count written by countOne or a sum.
func parseCount(v []byte) (uint64, error) {
	n, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("count_by_key: value %q is not a count", v)
	}
	return n, nil
}

// combineCount sums the decimal counts of each run of equal keys of a
// sorted batch.
func combineCount(b []byte) ([]byte, error) {
	out := batch.NewBuilder(len(b))
	var key []byte
	var sum uint64
	have := false
	var num []byte
	emit := func() {
		num = strconv.AppendUint(num[:0], sum, 10)
		out.Add(key, num)
	}
	it := batch.Checked(b)
	for it.Next() {
		n, err := parseCount(it.Value())
		if err != nil {
			return nil, err
		}
		if have && bytes.Equal(it.Key(), key) {
			sum += n
			continue
		}
		if have {
			emit()
		}
		key, sum, have = append(key[:0], it.Key()...), n, true
	}
	if have {
		emit()
	}
	return out.Bytes(), nil
}

// keyed is what mergeJoin reads: records in key order.
type keyed interface {
	Next() bool
	Key() []byte
	Value() []byte
	Err() error
}

// mergeJoin joins two inputs sorted by key: for each key on both sides,
// every (left, right) pair of values becomes a record whose value lists
// the two (grouped-values encoding); with outer, a left key without a
// match keeps its values, each alone in its list. A key's values are held
// in memory while it is joined.
func mergeJoin(left, right keyed, outer bool, emit func(key, value []byte) error) error {
	next := nextRun
	lmore, rmore := left.Next(), right.Next()
	l, err := next(left, &lmore)
	if err != nil {
		return err
	}
	rr, err := next(right, &rmore)
	if err != nil {
		return err
	}
	var enc []byte
	pair := make([][]byte, 2)
	for l.ok {
		c := -1 // the right side has ended: no match
		if rr.ok {
			c = bytes.Compare(l.key, rr.key)
		}
		switch {
		case c < 0: // no match on the right
			if outer {
				for _, a := range l.vals {
					pair[0] = a
					enc = AppendGroupedValues(enc[:0], pair[:1])
					if err := emit(l.key, enc); err != nil {
						return err
					}
				}
			}
			if l, err = next(left, &lmore); err != nil {
				return err
			}
		case c > 0:
			if rr, err = next(right, &rmore); err != nil {
				return err
			}
		default:
			for _, a := range l.vals {
				for _, b := range rr.vals {
					pair[0], pair[1] = a, b
					enc = AppendGroupedValues(enc[:0], pair)
					if err := emit(l.key, enc); err != nil {
						return err
					}
				}
			}
			if l, err = next(left, &lmore); err != nil {
				return err
			}
			if rr, err = next(right, &rmore); err != nil {
				return err
			}
		}
	}
	return nil
}

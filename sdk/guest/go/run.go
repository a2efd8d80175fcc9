package guest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
)

// Status codes returned by Run (and the wasmgrid_run export).
const (
	StatusOK        = 0 // output holds a batch
	StatusUserError = 1 // output holds the message of a panic in a user function
	StatusBadCall   = 2 // output holds why the call was malformed
)

// Run executes one call of the guest ABI (docs/abi.md, "A call") and returns
// the status and the output: a batch for StatusOK, a message otherwise. The
// output is only valid until the next Run.
func (r *Registry) Run(call []byte) (status int32, out []byte) {
	// Leave room for the record count, written when the call ends.
	r.out = append(r.out[:0], 0, 0, 0, 0)
	r.count = 0
	defer func() {
		if p := recover(); p != nil {
			status, out = StatusUserError, []byte(fmt.Sprint(p))
		}
	}()
	if len(call) < 4 {
		return StatusBadCall, []byte("call shorter than its function count")
	}
	n := binary.LittleEndian.Uint32(call)
	if n == 0 || uint64(len(call)) < 4+4*uint64(n)+4 {
		return StatusBadCall, []byte(fmt.Sprintf("call names %d functions but has %d bytes", n, len(call)))
	}
	chain := make([]*function, n)
	for i := range chain {
		idx := binary.LittleEndian.Uint32(call[4+4*i:])
		if idx >= uint32(len(r.funcs)) {
			return StatusBadCall, []byte(fmt.Sprintf("function index %d out of range: the module has %d functions", idx, len(r.funcs)))
		}
		chain[i] = &r.funcs[idx]
	}
	batch := call[4+4*n:]
	if chain[0].kind == KindReduce {
		if n != 1 {
			return StatusBadCall, []byte("a reduce function must be called alone")
		}
		if msg := r.reduce(chain[0], batch); msg != "" {
			return StatusBadCall, []byte(msg)
		}
		return StatusOK, r.finish()
	}
	for _, f := range chain[1:] {
		if f.kind == KindReduce {
			return StatusBadCall, []byte(fmt.Sprintf("reduce function %q chained after other functions", f.name))
		}
	}
	push := r.pipeline(chain)
	if msg := eachRecord(batch, push); msg != "" {
		return StatusBadCall, []byte(msg)
	}
	return StatusOK, r.finish()
}

// emit appends one record to the output batch. It is the hottest path of
// every guest: one length check, two stores and two copies per record.
func (r *Registry) emit(k, v []byte) {
	n := len(r.out)
	need := 8 + len(k) + len(v)
	if cap(r.out)-n < need {
		r.out = slices.Grow(r.out, need)
	}
	out := r.out[:n+need]
	binary.LittleEndian.PutUint32(out[n:], uint32(len(k)))
	binary.LittleEndian.PutUint32(out[n+4:], uint32(len(v)))
	copy(out[n+8:], k)
	copy(out[n+8+len(k):], v)
	r.out = out
	r.count++
}

// finish writes the record count in front of the records emitted.
func (r *Registry) finish() []byte {
	binary.LittleEndian.PutUint32(r.out, r.count)
	return r.out
}

// pipeline composes a chain of map, flat_map and filter functions into one
// push function that ends in emit.
func (r *Registry) pipeline(chain []*function) func(k, v []byte) {
	next := r.emit
	for i := len(chain) - 1; i >= 0; i-- {
		f, downstream := chain[i], next
		switch f.kind {
		case KindMap:
			next = func(k, v []byte) { downstream(f.mapFn(k, v)) }
		case KindFlatMap:
			next = func(k, v []byte) { f.flatFn(k, v, downstream) }
		case KindFilter:
			next = func(k, v []byte) {
				if f.filter(k, v) {
					downstream(k, v)
				}
			}
		}
	}
	return next
}

// reduce folds each run of equal keys of batch with f and emits one record
// per run.
func (r *Registry) reduce(f *function, batch []byte) string {
	var key []byte
	have := false
	msg := eachRecord(batch, func(k, v []byte) {
		if have && bytes.Equal(k, key) {
			r.acc = f.reducer(r.acc, v)
			return
		}
		if have {
			r.emit(key, r.acc)
		}
		key, have = k, true
		r.acc = append(r.acc[:0], v...)
	})
	if msg != "" {
		return msg
	}
	if have {
		r.emit(key, r.acc)
	}
	return ""
}

// eachRecord calls fn for every record of a batch, or returns why the batch
// is malformed.
func eachRecord(batch []byte, fn func(k, v []byte)) string {
	if len(batch) < 4 {
		return "batch shorter than its record count"
	}
	n := binary.LittleEndian.Uint32(batch)
	p := batch[4:]
	for i := uint32(0); i < n; i++ {
		if len(p) < 8 {
			return fmt.Sprintf("record %d of %d: truncated header", i, n)
		}
		kl, vl := uint64(binary.LittleEndian.Uint32(p)), uint64(binary.LittleEndian.Uint32(p[4:]))
		if uint64(len(p)-8) < kl+vl {
			return fmt.Sprintf("record %d of %d: lengths %d+%d pass the end of the batch", i, n, kl, vl)
		}
		k := p[8 : 8+kl : 8+kl]
		v := p[8+kl : 8+kl+vl : 8+kl+vl]
		p = p[8+kl+vl:]
		fn(k, v)
	}
	if len(p) != 0 {
		return fmt.Sprintf("%d bytes after the last of %d records", len(p), n)
	}
	return ""
}

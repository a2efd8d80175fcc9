//go:build !linux

package wasmexec

import "github.com/tetratelabs/wazero/experimental"

// limitedMemory backs one instance's linear memory and refuses to grow it
// past a limit. wazero then fails the guest's memory.grow, and the refusal is
// remembered so that the error can say the guest ran out of memory rather
// than that it trapped.
//
// This is the portable version: a Go slice that grows by copying, so a
// growing memory is briefly resident twice. Linux reserves address space
// instead (memory_linux.go).
type limitedMemory struct {
	limit   uint64
	buf     []byte
	refused uint64 // the largest size that was refused, 0 if none
}

func newLimitedMemory(limit, _ uint64) *limitedMemory { return &limitedMemory{limit: limit} }

func (m *limitedMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		m.refused = max(m.refused, size)
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	// Grow geometrically, as append would, but never past the limit.
	newCap := min(max(size, 2*uint64(cap(m.buf))), m.limit)
	nb := make([]byte, size, newCap)
	copy(nb, m.buf)
	m.buf = nb
	return m.buf
}

func (m *limitedMemory) Free() { m.buf = nil }

var _ experimental.LinearMemory = (*limitedMemory)(nil)

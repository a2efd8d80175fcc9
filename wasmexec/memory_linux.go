package wasmexec

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// limitedMemory backs one instance's linear memory and refuses to grow it
// past a limit. wazero then fails the guest's memory.grow, and the refusal is
// remembered so that the error can say the guest ran out of memory rather
// than that it trapped.
//
// The memory is one anonymous mapping of the most the instance may ever
// have (the module's maximum, bounded by the limit), reserved with
// MAP_NORESERVE: address space, not memory. Growing only lengthens the
// slice over it, so nothing is copied and a page costs memory only once
// the guest touches it; Free unmaps it, which returns its pages to the
// system at once. wazero's default allocator, and a Go slice, grow by
// allocating a larger buffer and copying: a memory that grows to N bytes
// is briefly resident as N plus its previous size, and the old buffers
// linger until a garbage collection (a guest growing to 512 MiB reached
// 1.2 GiB resident; see TestGrowBombResidentMemory).
type limitedMemory struct {
	limit   uint64
	mem     []byte // the reservation; nil after Free or if mmap failed
	buf     []byte // the fallback when the reservation could not be made
	refused uint64 // the largest size that was refused, 0 if none
}

// newLimitedMemory reserves address space for a memory that may grow to
// max bytes (the module's declared or implied maximum), within limit.
func newLimitedMemory(limit, max uint64) *limitedMemory {
	m := &limitedMemory{limit: limit}
	size := min(max, limit)
	if size == 0 {
		return m
	}
	page := uint64(syscall.Getpagesize())
	size = (size + page - 1) / page * page
	b, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	if err == nil {
		m.mem = b
	}
	// Without the reservation (address space exhausted, a limit on it), the
	// memory grows by copying, as it would elsewhere.
	return m
}

func (m *limitedMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		m.refused = max(m.refused, size)
		return nil
	}
	if m.mem != nil {
		if size > uint64(len(m.mem)) {
			// Past the module's maximum: wazero checks that first, so this
			// does not happen.
			m.refused = max(m.refused, size)
			return nil
		}
		return m.mem[:size:size]
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	newCap := min(max(size, 2*uint64(cap(m.buf))), m.limit)
	nb := make([]byte, size, newCap)
	copy(nb, m.buf)
	m.buf = nb
	return m.buf
}

// Free unmaps the memory. wazero calls it once the instance is closed, when
// no guest code runs in it any more and the host holds no view of it.
func (m *limitedMemory) Free() {
	if m.mem != nil {
		_ = syscall.Munmap(m.mem)
		m.mem = nil
	}
	m.buf = nil
}

var _ experimental.LinearMemory = (*limitedMemory)(nil)

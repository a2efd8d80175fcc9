package guest

import (
	"encoding/binary"
	"errors"
)

// Grouped returns the values of a group_by_key record's value (docs/abi.md,
// "Grouped values": u32 LE count, then each value as u32 LE length and
// bytes). The values alias b.
func Grouped(b []byte) ([][]byte, error) {
	if len(b) < 4 {
		return nil, errors.New("guest: grouped values shorter than their count")
	}
	n := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b))/4 {
		return nil, errors.New("guest: grouped values count more values than fit")
	}
	vals := make([][]byte, 0, n)
	for range n {
		if len(b) < 4 {
			return nil, errors.New("guest: grouped value cut short")
		}
		l := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(l) > uint64(len(b)) {
			return nil, errors.New("guest: grouped value runs past the record")
		}
		vals = append(vals, b[:l:l])
		b = b[l:]
	}
	if len(b) != 0 {
		return nil, errors.New("guest: bytes after the last grouped value")
	}
	return vals, nil
}

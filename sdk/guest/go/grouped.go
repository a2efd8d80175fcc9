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

// Record is a key and a value.
type Record struct{ Key, Value []byte }

// Records returns the records of a batch (docs/abi.md, "Records and
// batches"): the value a map_partitions function receives, which holds its
// whole partition. The records alias b.
func Records(b []byte) ([]Record, error) {
	var recs []Record
	if len(b) >= 4 {
		// At least 8 bytes per record: a count that cannot fit is caught
		// by eachRecord, not by a huge allocation here.
		recs = make([]Record, 0, min(uint64(binary.LittleEndian.Uint32(b)), uint64(len(b))/8))
	}
	if msg := eachRecord(b, func(k, v []byte) { recs = append(recs, Record{k, v}) }); msg != "" {
		return nil, errors.New("guest: " + msg)
	}
	return recs, nil
}

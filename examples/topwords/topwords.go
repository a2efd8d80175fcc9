// Package topwords holds the logic of the top-words example: a word count
// whose counts are then sorted, largest first, and cut to the top 100.
// ByCount turns (word, count) into a sort key that orders by count
// descending, then word; Format turns it back into "count<TAB>word". The
// guest in guest/go registers them with the word count's Split and Sum.
package topwords

import (
	"encoding/binary"
	"strconv"
)

// ByCount keys a (word, decimal count) record for sort_by_key: 8 bytes of
// the count's complement, big-endian, so that larger counts sort first,
// then the word, so that equal counts sort by word. The value is the
// count.
func ByCount(word, count []byte) (key, value []byte) {
	n, err := strconv.ParseUint(string(count), 10, 64)
	if err != nil {
		n = 0 // not a count: sorts last
	}
	key = binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(word)), ^n)
	return append(key, word...), count
}

// Format renders a sorted record as "count<TAB>word", with no key, so
// that the text sink writes the line as it is.
func Format(key, count []byte) (k, v []byte) {
	word := key[min(8, len(key)):]
	v = make([]byte, 0, len(count)+1+len(word))
	v = append(v, count...)
	v = append(v, '\t')
	return nil, append(v, word...)
}

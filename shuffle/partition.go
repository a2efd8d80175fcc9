package shuffle

import (
	"bytes"
	"fmt"
	"slices"
)

// RangePartitioner returns a partition function for sorted output over
// len(bounds)+1 partitions: partition i holds the keys k with
// bounds[i-1] <= k < bounds[i] (bytes.Compare), partition 0 the keys below
// bounds[0] and the last partition the keys at or above the last bound, so
// reading the partitions in order reads all keys in order. It copies bounds.
// It panics if the bounds are not strictly increasing, and the function it
// returns panics if it is called with n != len(bounds)+1 partitions.
func RangePartitioner(bounds [][]byte) func(key []byte, n int) int {
	b := make([][]byte, len(bounds))
	for i, k := range bounds {
		b[i] = bytes.Clone(k)
		if i > 0 && bytes.Compare(b[i-1], b[i]) >= 0 {
			panic(fmt.Sprintf("shuffle: RangePartitioner: bound %d (%q) is not above bound %d (%q)", i, b[i], i-1, b[i-1]))
		}
	}
	return func(key []byte, n int) int {
		if n != len(b)+1 {
			panic(fmt.Sprintf("shuffle: RangePartitioner with %d bounds called for %d partitions, want %d", len(b), n, len(b)+1))
		}
		i, found := slices.BinarySearchFunc(b, key, bytes.Compare)
		if found {
			i++ // a bound is the first key of its partition
		}
		return i
	}
}

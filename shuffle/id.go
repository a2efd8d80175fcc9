package shuffle

import (
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// MapOutputID tags every block so a block from a stale or duplicate attempt is
// never mixed into a result.
type MapOutputID struct {
	ShuffleID uint64
	MapIndex  uint32
	Attempt   uint32
}

// String returns the ID as "shuffle 3 map 7 attempt 0".
func (id MapOutputID) String() string {
	return fmt.Sprintf("shuffle %d map %d attempt %d", id.ShuffleID, id.MapIndex, id.Attempt)
}

// DataFileName returns the base name of the data file of a map output,
// "shuffle_<sid>_<map>_<attempt>.data".
func DataFileName(id MapOutputID) string {
	return fmt.Sprintf("shuffle_%d_%d_%d.data", id.ShuffleID, id.MapIndex, id.Attempt)
}

// IndexFileName returns the base name of the index file of a map output,
// "shuffle_<sid>_<map>_<attempt>.index".
func IndexFileName(id MapOutputID) string {
	return fmt.Sprintf("shuffle_%d_%d_%d.index", id.ShuffleID, id.MapIndex, id.Attempt)
}

// HashPartition returns xxhash64(key) % n: XXH64 with seed 0 of the key bytes,
// as an unsigned 64-bit integer, modulo n. It is stable across processes,
// machines and languages (docs/shuffle.md, "Partitioning"). It panics if n < 1.
func HashPartition(key []byte, n int) int {
	if n < 1 {
		panic(fmt.Sprintf("shuffle: HashPartition with %d partitions", n))
	}
	return int(xxhash.Sum64(key) % uint64(n))
}

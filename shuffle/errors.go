package shuffle

import (
	"errors"
	"fmt"
)

// ErrCorrupt is wrapped by every error about bytes that are not a valid block
// or index: a bad magic, version, checksum or tag, inconsistent lengths or
// counts, a record or chunk over the reader's limits, or a decompression bomb.
var ErrCorrupt = errors.New("corrupt shuffle block")

// ErrBadCombine marks a combiner that broke its contract (a malformed batch,
// keys out of order): a bug in the combine function, which no retry fixes.
var ErrBadCombine = errors.New("the combine function broke its contract")

// FetchError reports a block that cannot be read: it is missing (Err wraps
// fs.ErrNotExist), corrupt (Err wraps ErrCorrupt), or its bytes could not be
// read. The scheduler reruns the map task named by ID, so a FetchError must
// never be confused with a failure of the task that reads the block.
type FetchError struct {
	ID        MapOutputID
	Partition int
	Location  string // where the block lives, e.g. an agent name; may be empty
	Err       error
}

// Error returns, for example, "fetch shuffle 3 map 7 attempt 0 partition 2
// from agent-1: corrupt shuffle block: checksum mismatch in chunk 4".
func (e *FetchError) Error() string {
	from := ""
	if e.Location != "" {
		from = " from " + e.Location
	}
	return fmt.Sprintf("fetch %v partition %d%s: %v", e.ID, e.Partition, from, e.Err)
}

// Unwrap returns the cause.
func (e *FetchError) Unwrap() error { return e.Err }

// corruptf returns an error wrapping ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

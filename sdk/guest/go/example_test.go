package guest_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"

	guest "github.com/wasmgrid/wasmgrid/sdk/guest/go"
)

// A guest registers its functions in init; the wasm build exports them.
// Here a Registry of its own runs the same functions natively, one call of
// the guest ABI at a time.
func Example() {
	var r guest.Registry
	r.FlatMap("split", func(line []byte, emit func(k, v []byte)) {
		for _, w := range bytes.Fields(line) {
			emit(bytes.ToLower(w), []byte("1"))
		}
	})
	r.Reduce("sum", func(a, b []byte) []byte {
		x, _ := strconv.Atoi(string(a))
		y, _ := strconv.Atoi(string(b))
		return strconv.AppendInt(a[:0], int64(x+y), 10)
	})
	fmt.Print(string(r.Manifest()))

	// One call: function 0 (split) over a batch of one record.
	line := []byte("To be or not to be")
	c := binary.LittleEndian.AppendUint32(nil, 1) // one function
	c = binary.LittleEndian.AppendUint32(c, 0)    // split
	c = binary.LittleEndian.AppendUint32(c, 1)    // one record
	c = binary.LittleEndian.AppendUint32(c, 0)    // key length
	c = binary.LittleEndian.AppendUint32(c, uint32(len(line)))
	c = append(c, line...)
	status, out := r.Run(c)
	fmt.Println("status", status, "records", binary.LittleEndian.Uint32(out))
	// Output:
	// flat_map split
	// reduce sum
	// status 0 records 6
}

// Command go is the logs example's Go guest module: the reduce and the
// report around the Rust parser (../rust). It adds up the counts, keys
// each counted record for the sort so that the report comes out in order,
// and formats its lines. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o logs.wasm .
package main

import (
	"bytes"

	"github.com/wasmgrid/wasmgrid/examples/topwords"
	"github.com/wasmgrid/wasmgrid/examples/wordcount"
	guest "github.com/wasmgrid/wasmgrid/sdk/guest/go"
)

func init() {
	guest.Reduce("sum", wordcount.Sum)
	guest.Map("by_rank", ByRank)
	guest.Map("format", Format)
}

func main() {}

// The keys the Rust parser emits, and the first byte of the sort key
// ByRank gives each kind: the report's sections, in order.
const (
	rankStatus    = 0 // "status <code>"
	rankMalformed = 1 // "malformed"
	rankPath      = 2 // "path <path>"
	rankOther     = 3 // any other key
)

var (
	statusPrefix = []byte("status ")
	pathPrefix   = []byte("path ")
	malformed    = []byte("malformed")
)

// ByRank keys a counted record, (kind and name, decimal count), for
// sort_by_key, so that bytes order is the report's order: the status codes
// first, in code order (codes are three digits); then the count of
// malformed lines; then the paths, most requested first and equal counts
// by path (topwords.ByCount: the count's complement, big-endian, then the
// path). The value is the count.
func ByRank(key, count []byte) (k, v []byte) {
	switch {
	case bytes.HasPrefix(key, statusPrefix):
		return append([]byte{rankStatus}, key[len(statusPrefix):]...), count
	case bytes.Equal(key, malformed):
		return []byte{rankMalformed}, count
	case bytes.HasPrefix(key, pathPrefix):
		byCount, _ := topwords.ByCount(key[len(pathPrefix):], count)
		return append([]byte{rankPath}, byCount...), count
	}
	return append([]byte{rankOther}, key...), count
}

// Format renders a sorted record as the report's line
// "kind<TAB>name<TAB>count", with no key, so that the text sink writes it
// as it is: "status<TAB>404<TAB>12", "malformed<TAB>-<TAB>3",
// "path<TAB>/index.html<TAB>151".
func Format(key, count []byte) (k, v []byte) {
	var kind, name []byte
	switch {
	case len(key) == 0:
		kind, name = []byte("other"), nil
	case key[0] == rankStatus:
		kind, name = []byte("status"), key[1:]
	case key[0] == rankMalformed:
		kind, name = malformed, []byte("-")
	case key[0] == rankPath:
		kind, name = []byte("path"), key[min(1+8, len(key)):]
	default:
		kind, name = []byte("other"), key[1:]
	}
	v = make([]byte, 0, len(kind)+len(name)+len(count)+2)
	v = append(v, kind...)
	v = append(v, '\t')
	v = append(v, name...)
	v = append(v, '\t')
	return nil, append(v, count...)
}

// Command conformance is the Go guest SDK's conformance module: the
// functions of docs/conformance.md, which every guest SDK implements alike.
package main

import (
	"os"
	"strconv"

	guest "github.com/wasmgrid/wasmgrid/sdk/guest/go"
)

func upper(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

func init() {
	guest.Map("identity", func(k, v []byte) ([]byte, []byte) { return k, v })
	guest.Map("swap", func(k, v []byte) ([]byte, []byte) { return v, k })
	guest.Map("upper", func(k, v []byte) ([]byte, []byte) { return upper(k), upper(v) })
	guest.FlatMapPairs("explode", func(k, v []byte, emit func(k, v []byte)) {
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return
		}
		var buf []byte
		for i := uint64(0); i < n; i++ {
			buf = strconv.AppendUint(buf[:0], i, 10)
			emit(k, buf)
		}
	})
	guest.Filter("nonempty", func(_, v []byte) bool { return len(v) > 0 })
	guest.Reduce("concat", func(a, b []byte) []byte { return append(append(a, '+'), b...) })
	guest.Reduce("sum", func(a, b []byte) []byte {
		x, _ := strconv.ParseUint(string(a), 10, 64)
		y, _ := strconv.ParseUint(string(b), 10, 64)
		return strconv.AppendUint(a[:0], x+y, 10)
	})
	guest.Map("fail", func(k, _ []byte) ([]byte, []byte) { panic("fail: refusing record " + string(k)) })
	guest.Map("trap", func(_, _ []byte) ([]byte, []byte) {
		os.Exit(3)
		return nil, nil
	})
	guest.FlatMapPairs("fail_after", func(k, v []byte, emit func(k, v []byte)) {
		if string(k) == "boom" {
			panic("fail_after: boom")
		}
		emit(k, v)
	})
}

func main() {}

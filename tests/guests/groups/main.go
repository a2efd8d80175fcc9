// Command groups is a test guest for group_by_key and distinct: it renders
// records as hex text so that tests can compare them with native
// references.
package main

import (
	"encoding/hex"
	"slices"
	"strings"

	guest "github.com/wasmgrid/wasmgrid/sdk/guest/go"
)

func init() {
	// hexrec renders a record as hex(key), hex(value).
	guest.Map("hexrec", func(k, v []byte) ([]byte, []byte) {
		return []byte(hex.EncodeToString(k)), []byte(hex.EncodeToString(v))
	})
	// hexkey renders the key in hex and keeps the value.
	guest.Map("hexkey", func(k, v []byte) ([]byte, []byte) {
		return []byte(hex.EncodeToString(k)), v
	})
	// group renders a grouped record as hex(key), its values in hex,
	// sorted and joined by commas.
	guest.Map("group", func(k, v []byte) ([]byte, []byte) {
		vals, err := guest.Grouped(v)
		if err != nil {
			return []byte("error"), []byte(err.Error())
		}
		hs := make([]string, len(vals))
		for i, x := range vals {
			hs[i] = hex.EncodeToString(x)
		}
		slices.Sort(hs)
		return []byte(hex.EncodeToString(k)), []byte(strings.Join(hs, ","))
	})
}

func main() {}

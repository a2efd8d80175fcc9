// Command groups is a test guest for group_by_key and distinct: it renders
// records as hex text so that tests can compare them with native
// references.
package main

import (
	"encoding/hex"
	"slices"
	"strconv"
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
		hs, err := hexList(v)
		if err != nil {
			return []byte("error"), []byte(err.Error())
		}
		return []byte(hex.EncodeToString(k)), []byte(hs)
	})
}

func init() {
	// valhex returns a junk key and the value in hex: as map_values, the
	// record keeps its key.
	guest.Map("valhex", func(k, v []byte) ([]byte, []byte) {
		return []byte("junk"), []byte(hex.EncodeToString(v))
	})
	// lastbyte returns the value's last byte as the key and a junk value:
	// as key_by, the record keeps its value.
	guest.Map("lastbyte", func(k, v []byte) ([]byte, []byte) {
		return v[len(v)-1:], []byte("junk")
	})
	// partition, as map_partitions, emits one record per partition: its
	// record count, and the hex of its smallest key.
	guest.FlatMapPairs("partition", func(_, v []byte, emit func(k, v []byte)) {
		recs, err := guest.Records(v)
		if err != nil {
			emit([]byte("error"), []byte(err.Error()))
			return
		}
		var least []byte
		for i, r := range recs {
			if i == 0 || string(r.Key) < string(least) {
				least = r.Key
			}
		}
		emit([]byte(hex.EncodeToString(least)), strconv.AppendInt(nil, int64(len(recs)), 10))
	})
	// one and sum count: create and merge of aggregate_by_key.
	guest.Map("one", func(k, v []byte) ([]byte, []byte) { return k, []byte("1") })
	guest.Reduce("sum", func(a, b []byte) []byte {
		x, _ := strconv.Atoi(string(a))
		y, _ := strconv.Atoi(string(b))
		return strconv.AppendInt(nil, int64(x+y), 10)
	})
	// cogroup renders a cogrouped record as hex(key), then the sorted hex
	// values of each side joined by commas, the sides by "|".
	guest.Map("cogroup", func(k, v []byte) ([]byte, []byte) {
		sides, err := guest.Grouped(v)
		if err != nil || len(sides) != 2 {
			return []byte("error"), []byte("not two sides")
		}
		var out []string
		for _, side := range sides {
			hs, err := hexList(side)
			if err != nil {
				return []byte("error"), []byte(err.Error())
			}
			out = append(out, hs)
		}
		return []byte(hex.EncodeToString(k)), []byte(strings.Join(out, "|"))
	})
}

// hexList renders grouped values as their hex forms, sorted, joined by
// commas.
func hexList(grouped []byte) (string, error) {
	vals, err := guest.Grouped(grouped)
	if err != nil {
		return "", err
	}
	hs := make([]string, len(vals))
	for i, x := range vals {
		hs[i] = hex.EncodeToString(x)
	}
	slices.Sort(hs)
	return strings.Join(hs, ","), nil
}

func main() {}

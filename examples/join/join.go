// Package join holds the logic of the join example: revenue per customer
// country from two CSV files, orders (order_id,customer_id,cents) and
// customers (customer_id,name,country). The orders are keyed by customer,
// the customers too, the two are joined by key, and each joined pair
// becomes (country, cents), summed per country. The guest in guest/go
// registers these functions.
package join

import (
	"bytes"
	"encoding/binary"
	"strconv"
)

// NotHeader drops a CSV file's header line (it starts with a letter).
func NotHeader(_, line []byte) bool {
	return len(line) > 0 && line[0] >= '0' && line[0] <= '9'
}

// field is the i-th comma-separated field of line.
func field(line []byte, i int) []byte {
	for range i {
		_, line, _ = bytes.Cut(line, []byte(","))
	}
	f, _, _ := bytes.Cut(line, []byte(","))
	return f
}

// OrderByCustomer keys an order line by its customer: (customer_id, cents).
func OrderByCustomer(_, line []byte) (k, v []byte) { return field(line, 1), field(line, 2) }

// CustomerCountry keys a customer line: (customer_id, country).
func CustomerCountry(_, line []byte) (k, v []byte) { return field(line, 0), field(line, 2) }

// Revenue turns a joined record (customer, [cents, country]) into
// (country, cents). The joined value lists the two sides' values:
// u32 LE count, then u32 LE length and bytes each (docs/abi.md).
func Revenue(_, joined []byte) (k, v []byte) {
	vals := grouped(joined)
	if len(vals) != 2 {
		return []byte("?"), []byte("0")
	}
	return vals[1], vals[0]
}

func grouped(b []byte) [][]byte {
	if len(b) < 4 {
		return nil
	}
	n := binary.LittleEndian.Uint32(b)
	b = b[4:]
	var out [][]byte
	for range n {
		if len(b) < 4 {
			return nil
		}
		l := binary.LittleEndian.Uint32(b)
		if uint64(l) > uint64(len(b)-4) {
			return nil
		}
		out = append(out, b[4:4+l])
		b = b[4+l:]
	}
	return out
}

// Sum adds two decimal amounts.
func Sum(a, b []byte) []byte {
	x, _ := strconv.ParseInt(string(a), 10, 64)
	y, _ := strconv.ParseInt(string(b), 10, 64)
	return strconv.AppendInt(a[:0], x+y, 10)
}

// Format renders (country, cents) as "country<TAB>units.cents".
func Format(country, cents []byte) (k, v []byte) {
	n, _ := strconv.ParseInt(string(cents), 10, 64)
	out := append([]byte(nil), country...)
	out = append(out, '\t')
	out = strconv.AppendInt(out, n/100, 10)
	out = append(out, '.')
	if c := n % 100; c < 10 {
		out = append(out, '0')
	}
	return nil, strconv.AppendInt(out, n%100, 10)
}

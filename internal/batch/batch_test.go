package batch

import (
	"bytes"
	"fmt"
	"testing"
)

func TestBuilderAndIter(t *testing.T) {
	b := NewBuilder(32)
	recs := [][2]string{{"", ""}, {"k", "v"}, {"\x00", "zero\x00"}, {"long key", "value"}}
	for _, r := range recs {
		b.Add([]byte(r[0]), []byte(r[1]))
	}
	if !b.Full() || b.Len() != 4 {
		t.Fatalf("full=%v len=%d", b.Full(), b.Len())
	}
	enc := b.Bytes()
	n, last, err := Scan(enc)
	if err != nil || n != 4 || !bytes.Equal(enc[last:], AppendRecord(nil, []byte("long key"), []byte("value"))) {
		t.Fatalf("Scan = %d, %d, %v", n, last, err)
	}
	it, err := Open(enc)
	if err != nil {
		t.Fatal(err)
	}
	var got [][2]string
	for it.Next() {
		got = append(got, [2]string{string(it.Key()), string(it.Value())})
	}
	if fmt.Sprint(got) != fmt.Sprint(recs) {
		t.Fatalf("got %q", got)
	}
	var again [][2]string
	for it := Checked(enc); it.Next(); {
		again = append(again, [2]string{string(it.Key()), string(it.Value())})
	}
	if fmt.Sprint(again) != fmt.Sprint(recs) {
		t.Fatalf("Checked gives %q", again)
	}
	b.Reset()
	if n, last, err := Scan(b.Bytes()); n != 0 || last != 4 || err != nil {
		t.Fatalf("empty batch: %d %d %v", n, last, err)
	}
}

func TestScanRejects(t *testing.T) {
	good := AppendRecord([]byte{1, 0, 0, 0}, []byte("k"), []byte("v"))
	for name, b := range map[string][]byte{
		"short":          {1, 0},
		"count too big":  {9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"truncated":      good[:len(good)-1],
		"trailing":       append(append([]byte{}, good...), 7),
		"length overrun": {1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0},
	} {
		if _, _, err := Scan(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzScan(f *testing.F) {
	f.Add(AppendRecord([]byte{1, 0, 0, 0}, []byte("k"), []byte("v")))
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, last, err := Scan(b)
		if err != nil {
			return
		}
		it, err := Open(b)
		if err != nil {
			t.Fatalf("Scan accepted what Open refused: %v", err)
		}
		seen := uint32(0)
		re := []byte{0, 0, 0, 0}
		for it.Next() {
			seen++
			re = AppendRecord(re, it.Key(), it.Value())
		}
		re[0], re[1], re[2], re[3] = b[0], b[1], b[2], b[3]
		if seen != n || !bytes.Equal(re, b) || (n > 0 && last >= len(b)) {
			t.Fatalf("re-encoding differs: %d records, last %d", seen, last)
		}
	})
}

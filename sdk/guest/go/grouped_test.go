package guest

import (
	"encoding/binary"
	"testing"
)

func appendGrouped(dst []byte, vals ...string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(vals)))
	for _, v := range vals {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(v)))
		dst = append(dst, v...)
	}
	return dst
}

func TestGrouped(t *testing.T) {
	vals, err := Grouped(appendGrouped(nil, "a", "", "\xff\x00"))
	if err != nil || len(vals) != 3 || string(vals[0]) != "a" || len(vals[1]) != 0 || string(vals[2]) != "\xff\x00" {
		t.Fatalf("Grouped = %q, %v", vals, err)
	}
	for _, bad := range [][]byte{nil, {1, 0, 0, 0}, {1, 0, 0, 0, 9, 0, 0, 0, 'x'}, append(appendGrouped(nil, "a"), 0)} {
		if _, err := Grouped(bad); err == nil {
			t.Errorf("Grouped(%q) succeeded", bad)
		}
	}
}

func FuzzGrouped(f *testing.F) {
	f.Add(appendGrouped(nil, "a", "bc"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = Grouped(b) })
}

func TestRecords(t *testing.T) {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, kv := range [][2]string{{"k", "v"}, {"", "\xff\x00"}} {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(kv[0])))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(kv[1])))
		b = append(append(b, kv[0]...), kv[1]...)
	}
	recs, err := Records(b)
	if err != nil || len(recs) != 2 || string(recs[0].Key) != "k" || string(recs[1].Value) != "\xff\x00" {
		t.Fatalf("Records = %q, %v", recs, err)
	}
	for _, bad := range [][]byte{nil, {1, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff}, append(b, 0)} {
		if _, err := Records(bad); err == nil {
			t.Errorf("Records(%q) succeeded", bad)
		}
	}
}

func FuzzRecords(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'k', 'v'})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := Records(b)
		if err == nil && len(b) < 4+8*len(recs) {
			t.Fatalf("%d records from %d bytes", len(recs), len(b))
		}
	})
}

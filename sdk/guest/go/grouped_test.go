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

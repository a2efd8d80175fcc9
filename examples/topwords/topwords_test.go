package topwords

import (
	"bytes"
	"slices"
	"testing"
)

func TestByCountOrdersByCountThenWord(t *testing.T) {
	recs := []struct{ word, count string }{{"b", "5"}, {"a", "5"}, {"c", "12"}, {"d", "1"}, {"e", "100000000000"}}
	var keys [][]byte
	for _, r := range recs {
		k, v := ByCount([]byte(r.word), []byte(r.count))
		if string(v) != r.count {
			t.Fatalf("value %q", v)
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, bytes.Compare)
	var got []string
	for _, k := range keys {
		_, line := Format(k, nil)
		got = append(got, string(bytes.TrimPrefix(line, []byte("\t"))))
	}
	want := []string{"e", "c", "a", "b", "d"}
	if !slices.Equal(got, want) {
		t.Fatalf("order %q, want %q", got, want)
	}
	if _, v := Format([]byte{0, 0, 0, 0, 0, 0, 0, 0, 'x'}, []byte("7")); string(v) != "7\tx" {
		t.Fatalf("Format: %q", v)
	}
}

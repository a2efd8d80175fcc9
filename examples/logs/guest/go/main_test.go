package main

import (
	"bytes"
	"slices"
	"testing"
)

// TestReportOrder: keyed by ByRank and sorted by key, the records come out
// as the report lists them: status codes in code order, the malformed
// count, then paths by count descending and path.
func TestReportOrder(t *testing.T) {
	recs := []struct{ key, count string }{
		{"path /b", "5"},
		{"status 500", "2"},
		{"path /a", "5"},
		{"malformed", "3"},
		{"path /index.html", "12"},
		{"status 200", "30"},
		{"path /x", "100000000000"},
		{"status 404", "9"},
		{"path ", "1"},
		{"weird", "4"},
	}
	type sorted struct{ key, count []byte }
	var keyed []sorted
	for _, r := range recs {
		k, v := ByRank([]byte(r.key), []byte(r.count))
		if string(v) != r.count {
			t.Fatalf("ByRank(%q) changed the count to %q", r.key, v)
		}
		keyed = append(keyed, sorted{k, v})
	}
	slices.SortFunc(keyed, func(a, b sorted) int { return bytes.Compare(a.key, b.key) })
	var got []string
	for _, r := range keyed {
		k, line := Format(r.key, r.count)
		if k != nil {
			t.Fatalf("Format keyed its line %q", k)
		}
		got = append(got, string(line))
	}
	want := []string{
		"status\t200\t30",
		"status\t404\t9",
		"status\t500\t2",
		"malformed\t-\t3",
		"path\t/x\t100000000000",
		"path\t/index.html\t12",
		"path\t/a\t5",
		"path\t/b\t5",
		"path\t\t1",
		"other\tweird\t4",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("report\n%q\nwant\n%q", got, want)
	}
}

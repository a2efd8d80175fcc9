package tests

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/sdk"
)

// groupRecords makes 12-byte records keyed by their first 4 bytes: keys
// that are not UTF-8, one key holding half the records, values repeating
// so that distinct has work.
func groupRecords(t *testing.T, dir string) [][2][]byte {
	t.Helper()
	var recs [][2][]byte
	var file []byte
	rng := uint64(99)
	next := func() uint64 {
		rng = rng*6364136223846793005 + 1442695040888963407
		return rng >> 33
	}
	for i := range 6000 {
		k := []byte{0xff, byte(next() % 40), 0x80, 0xfe}
		if i%2 == 0 {
			k = []byte{0xc3, 0x28, 0xa0, 0xa1} // invalid UTF-8, half the records
		}
		v := []byte{byte(next() % 3), 0, 0, 0, 0, 0, 0xff, byte(next() % 5)}
		recs = append(recs, [2][]byte{k, v})
		file = append(append(file, k...), v...)
	}
	if err := os.WriteFile(filepath.Join(dir, "recs"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestGroupByKeyAndDistinct runs group_by_key, count_by_key and distinct over 5 partitions (some
// empty) against native references.
func TestGroupByKeyAndDistinct(t *testing.T) {
	dir := t.TempDir()
	recs := groupRecords(t, dir)
	l, err := sdk.StartLocal(sdk.LocalConfig{Agents: 2, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	glob := filepath.Join(dir, "recs")

	groups := map[string][]string{}
	counts := map[string]int{}
	seen := map[string]bool{}
	var wantDistinct []string
	for _, r := range recs {
		k, v := hex.EncodeToString(r[0]), hex.EncodeToString(r[1])
		groups[k] = append(groups[k], v)
		counts[k]++
		if !seen[k+"\t"+v] {
			seen[k+"\t"+v] = true
			wantDistinct = append(wantDistinct, k+"\t"+v)
		}
	}
	var wantGroups []string
	for k, vs := range groups {
		slices.Sort(vs)
		wantGroups = append(wantGroups, k+"\t"+strings.Join(vs, ","))
	}
	slices.Sort(wantGroups)
	slices.Sort(wantDistinct)

	run := func(build func(src *sdk.Dataset, g *sdk.ModuleRef)) []string {
		job := sdk.NewJob("groups")
		g := job.Module("g", sdk.GoGuest("guests/groups"))
		build(job.RecordFile(glob, 12, 4), g)
		built, err := job.Build(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := l.Run(context.Background(), built, &out); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		slices.Sort(lines)
		return lines
	}
	gotGroups := run(func(src *sdk.Dataset, g *sdk.ModuleRef) {
		src.GroupByKey(5).Map(g.Func("group")).Write(sdk.Stdout())
	})
	if !slices.Equal(gotGroups, wantGroups) {
		t.Errorf("group_by_key: %d groups, want %d; first got %.80q, want %.80q", len(gotGroups), len(wantGroups), gotGroups[0], wantGroups[0])
	}
	var wantCounts []string
	for k, n := range counts {
		wantCounts = append(wantCounts, fmt.Sprintf("%s\t%d", k, n))
	}
	slices.Sort(wantCounts)
	gotCounts := run(func(src *sdk.Dataset, g *sdk.ModuleRef) {
		src.CountByKey(3).Map(g.Func("hexkey")).Write(sdk.Stdout())
	})
	if !slices.Equal(gotCounts, wantCounts) {
		t.Errorf("count_by_key: got %q, want %q", gotCounts, wantCounts)
	}
	gotDistinct := run(func(src *sdk.Dataset, g *sdk.ModuleRef) {
		src.Distinct(5).Map(g.Func("hexrec")).Write(sdk.Stdout())
	})
	if !slices.Equal(gotDistinct, wantDistinct) {
		t.Errorf("distinct: %d records, want %d", len(gotDistinct), len(wantDistinct))
	}
}

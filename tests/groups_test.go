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
	"github.com/wasmgrid/wasmgrid/sdk/local"
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
	l, err := local.Start(local.Config{Agents: 2, Slots: 2})
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
		return sortedLines(t, l, built)
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

// TestRepartitionAndPartitionBy: repartition spreads records with equal
// (empty) keys evenly; partition_by puts each key in one partition; both
// keep every record.
func TestRepartitionAndPartitionBy(t *testing.T) {
	dir := t.TempDir()
	var text bytes.Buffer
	for i := range 5000 {
		fmt.Fprintf(&text, "line %d\n", i)
	}
	os.WriteFile(filepath.Join(dir, "lines.txt"), text.Bytes(), 0o644)
	recs := groupRecords(t, dir)
	l, err := local.Start(local.Config{Agents: 2, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	parts := func(out string) [][]string {
		files, _ := filepath.Glob(filepath.Join(out, "part-*"))
		slices.Sort(files)
		var ps [][]string
		for _, f := range files {
			b, _ := os.ReadFile(f)
			var lines []string
			for line := range strings.Lines(string(b)) {
				lines = append(lines, strings.TrimSuffix(line, "\n"))
			}
			ps = append(ps, lines)
		}
		return ps
	}

	job := sdk.NewJob("repartition")
	out := filepath.Join(dir, "rr")
	job.TextFile(filepath.Join(dir, "lines.txt")).Repartition(4).Write(sdk.Text(out))
	if err := job.Run(ctx, l, nil); err != nil {
		t.Fatal(err)
	}
	var all []string
	for i, p := range parts(out) {
		if len(p) < 1000 || len(p) > 1500 {
			t.Errorf("repartition: partition %d holds %d of 5000 lines, want about 1250", i, len(p))
		}
		all = append(all, p...)
	}
	if len(all) != 5000 {
		t.Errorf("repartition kept %d of 5000 lines", len(all))
	}

	job = sdk.NewJob("partition-by")
	g := job.Module("g", sdk.GoGuest("guests/groups"))
	out = filepath.Join(dir, "byk")
	job.RecordFile(filepath.Join(dir, "recs"), 12, 4).PartitionBy(3).Map(g.Func("hexrec")).Write(sdk.Text(out))
	if err := job.Run(ctx, l, nil); err != nil {
		t.Fatal(err)
	}
	where := map[string]int{}
	n := 0
	for i, p := range parts(out) {
		for _, line := range p {
			k, _, _ := strings.Cut(line, "\t")
			if j, ok := where[k]; ok && j != i {
				t.Fatalf("key %s is in partitions %d and %d", k, j, i)
			}
			where[k] = i
			n++
		}
	}
	if n != len(recs) {
		t.Errorf("partition_by kept %d of %d records", n, len(recs))
	}
}

// TestUnion counts the words of two inputs joined by a union, and writes
// a union as it is: both equal what the two files hold together.
func TestUnion(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt")
	if err := writeCorpus(a, 1<<20, 21); err != nil {
		t.Fatal(err)
	}
	if err := writeCorpus(b, 512<<10, 22); err != nil {
		t.Fatal(err)
	}
	want := referenceCounts(t, a)
	for w, n := range referenceCounts(t, b) {
		want[w] += n
	}
	l, err := local.Start(local.Config{Agents: 2, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	job := sdk.NewJob("union-count").Conf("source.split_size", "256KiB")
	wc := job.Module("wc", sdk.GoGuest(repoPath("examples/wordcount/guest/go")))
	job.TextFile(a).Union(job.TextFile(b)).FlatMap(wc.Func("split")).ReduceByKey(wc.Func("sum")).Write(sdk.Stdout())
	var out bytes.Buffer
	if err := job.Run(ctx, l, &out); err != nil {
		t.Fatal(err)
	}
	sameCounts(t, parseCounts(t, out.String()), want)

	// A union as the result: every line of both files, once.
	job = sdk.NewJob("union-lines").Conf("source.split_size", "256KiB")
	job.TextFile(a).Union(job.TextFile(b)).Write(sdk.Stdout())
	out.Reset()
	if err := job.Run(ctx, l, &out); err != nil {
		t.Fatal(err)
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	wantLines := strings.Split(strings.ReplaceAll(string(ab)+string(bb), "\r\n", "\n"), "\n")
	gotLines := strings.Split(out.String(), "\n")
	wantLines, gotLines = slices.DeleteFunc(wantLines, func(s string) bool { return s == "" }), slices.DeleteFunc(gotLines, func(s string) bool { return s == "" })
	slices.Sort(wantLines)
	slices.Sort(gotLines)
	if len(gotLines) != len(wantLines) || !slices.Equal(gotLines, wantLines) {
		t.Errorf("union of lines: %d lines, want %d", len(gotLines), len(wantLines))
	}
}

// sortedLines runs job on l and returns the lines it printed, sorted (the
// order of partitions is the grid's business).
func sortedLines(t testing.TB, l *local.Grid, job *sdk.Job) []string {
	t.Helper()
	var out bytes.Buffer
	if _, err := l.Run(context.Background(), job, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	slices.Sort(lines)
	return lines
}

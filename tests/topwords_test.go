package tests

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

// TestTopWords sorts a word count of a generated corpus by count over
// several range partitions and keeps the top 100: the lines must equal a
// native count sorted by count (descending), then word.
func TestTopWords(t *testing.T) {
	input := filepath.Join(t.TempDir(), "corpus.txt")
	if err := writeCorpus(input, 8<<20, 3); err != nil {
		t.Fatal(err)
	}
	counts := referenceCounts(t, input)
	type wc struct {
		w string
		n int64
	}
	var all []wc
	for w, n := range counts {
		all = append(all, wc{w, n})
	}
	slices.SortFunc(all, func(a, b wc) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return strings.Compare(a.w, b.w)
	})
	var want bytes.Buffer
	for _, x := range all[:100] {
		fmt.Fprintf(&want, "%d\t%s\n", x.n, x.w)
	}
	ctx := context.Background()
	job, err := sdk.LoadJob(ctx, repoPath("examples/topwords/job.toml"), map[string]string{"input": input},
		map[string]string{"partitions": "4", "source.split_size": "1MiB"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := local.Start(local.Config{Agents: 2, Slots: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var got bytes.Buffer
	sum, err := l.Run(ctx, job, &got)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Fatalf("top words differ:\ngot:\n%s\nwant:\n%s", head(got.String(), 10), head(want.String(), 10))
	}
	if sum.RecordsOut != 100 {
		t.Errorf("summary says %d records out, want 100", sum.RecordsOut)
	}
}

func head(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	return strings.Join(lines[:min(n, len(lines))], "")
}

package tests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/wasmgrid/wasmgrid/examples/wordcount"
	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

// referenceCounts is the word count of a file computed natively, line by
// line, with the same word rule.
func referenceCounts(t *testing.T, path string) map[string]int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	counts := map[string]int64{}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		wordcount.Split(line, func(k, _ []byte) { counts[string(k)]++ })
		if err != nil {
			break
		}
	}
	return counts
}

// readCounts reads a text sink's part files.
func readCounts(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	parts, err := filepath.Glob(filepath.Join(dir, "part-*"))
	if err != nil || len(parts) == 0 {
		t.Fatalf("no part files in %s: %v", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "_SUCCESS")); err != nil {
		t.Fatalf("no _SUCCESS marker: %v", err)
	}
	counts := map[string]int64{}
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for line := range bytes.Lines(b) {
			word, n, ok := bytes.Cut(bytes.TrimSuffix(line, []byte("\n")), []byte("\t"))
			if !ok {
				t.Fatalf("%s: line %q is not word<TAB>count", p, line)
			}
			c, err := strconv.ParseInt(string(n), 10, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", p, line, err)
			}
			if _, dup := counts[string(word)]; dup {
				t.Fatalf("word %q appears twice in the output", word)
			}
			counts[string(word)] = c
		}
	}
	return counts
}

func repoPath(rel string) string { return filepath.Join("..", rel) }

func TestWordCountMatchesNativeGo(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a 50 MB corpus")
	}
	dir := t.TempDir()
	input := filepath.Join(dir, "corpus.txt")
	if err := writeCorpus(input, 50<<20, 42); err != nil {
		t.Fatal(err)
	}
	want := referenceCounts(t, input)
	if len(want) < 100_000 {
		t.Fatalf("corpus has only %d distinct words", len(want))
	}

	g, err := local.Start(local.Config{Agents: 2, Slots: max(2, runtime.NumCPU()), StateDir: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	out := filepath.Join(dir, "out")
	job, err := sdk.LoadJob(context.Background(), repoPath("examples/wordcount/job.toml"),
		map[string]string{"input": input, "output": out},
		// shuffle.memory is 50 times smaller than the input: map tasks spill
		// sorted runs, and reducers keep fetched blocks on disk.
		map[string]string{"partitions": "5", "source.split_size": "8MiB", "shuffle.memory": "1MiB"})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := g.Run(context.Background(), job, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := readCounts(t, out)
	if len(got) != len(want) {
		t.Errorf("%d distinct words, want %d", len(got), len(want))
	}
	var diffs []string
	for _, w := range slices.Sorted(maps.Keys(want)) {
		if got[w] != want[w] {
			diffs = append(diffs, fmt.Sprintf("%q: got %d, want %d", w, got[w], want[w]))
		}
	}
	for w := range got {
		if _, ok := want[w]; !ok {
			diffs = append(diffs, fmt.Sprintf("%q: unexpected, count %d", w, got[w]))
		}
	}
	if len(diffs) > 0 {
		t.Fatalf("%d words differ, the first: %v", len(diffs), diffs[:min(10, len(diffs))])
	}
	if sum.RecordsOut != int64(len(want)) || sum.BytesIn != fileSize(t, input) {
		t.Fatalf("summary %+v: records out %d (want %d), bytes in %d (want %d)", sum, sum.RecordsOut, len(want), sum.BytesIn, fileSize(t, input))
	}
	if sum.Tasks != 7+5 || sum.FailedAttempts != 0 {
		t.Fatalf("summary %+v: want 7 map + 5 reduce tasks and no failure", sum)
	}
	t.Logf("%d distinct words, %d records in, %s, shuffle.memory 1 MiB, executor peak RSS %d MiB", len(got), sum.RecordsIn, sum.Duration, sum.ExecutorPeakRSS>>20)
}

func fileSize(t *testing.T, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

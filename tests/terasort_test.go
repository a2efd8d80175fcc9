package tests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/wasmgrid/wasmgrid/examples/terasort/sortbench"
	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

// genTera writes n Sort Benchmark records (binary keys, or ASCII lines)
// into files under dir and returns their checksum.
func genTera(t testing.TB, dir string, n uint64, files int, ascii bool) sortbench.Uint128 {
	t.Helper()
	sum, err := sortbench.GenerateFiles(dir, n, files, ascii)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// validateParts validates the part files of dir in name order as one
// sequence.
func validateParts(t testing.TB, dir string) sortbench.Summary {
	t.Helper()
	parts, err := filepath.Glob(filepath.Join(dir, "part-*"))
	if err != nil || len(parts) == 0 {
		t.Fatalf("no part files in %s: %v", dir, err)
	}
	sort.Strings(parts)
	s, err := sortbench.ValidateFiles(parts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func runTera(t testing.TB, l *local.Grid, in, out string, partitions int) {
	t.Helper()
	job, err := sdk.LoadJob(context.Background(), repoPath("examples/terasort/job.toml"),
		map[string]string{"input": filepath.Join(in, "*"), "output": out},
		map[string]string{"partitions": strconv.Itoa(partitions), "source.split_size": "8MiB"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Run(context.Background(), job, io.Discard); err != nil {
		t.Fatal(err)
	}
}

// TestTeraSort sorts 30 MB of binary Sort Benchmark records over 6 range
// partitions: valsort's checks (order, count, checksum) must pass.
func TestTeraSort(t *testing.T) {
	const n = 300_000
	dir := t.TempDir()
	want := genTera(t, filepath.Join(dir, "in"), n, 3, false)
	l, err := local.Start(local.Config{Agents: 2, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	runTera(t, l, filepath.Join(dir, "in"), filepath.Join(dir, "out"), 6)
	s := validateParts(t, filepath.Join(dir, "out"))
	if s.Records != n || s.Unordered != 0 || s.Checksum != want {
		t.Fatalf("valsort: %d records, %d unordered (first %d), checksum %s; want %d records in order, checksum %s",
			s.Records, s.Unordered, s.FirstUnordered, s.Checksum, n, want)
	}
}

// BenchmarkTeraSort sorts ASCII Sort Benchmark records (100-byte lines,
// so that GNU sort can sort the same bytes) on the embedded grid, and with
// GNU sort (LC_ALL=C, all cores) in the same run. The size is
// WASMGRID_TERASORT_MB megabytes (default 100; the closing notes quote
// 1000).
func BenchmarkTeraSort(b *testing.B) {
	mb := 100
	if v := os.Getenv("WASMGRID_TERASORT_MB"); v != "" {
		var err error
		if mb, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	n := uint64(mb) * 10_000
	dir := b.TempDir()
	in := filepath.Join(dir, "in")
	want := genTera(b, in, n, 8, true)
	b.Run("grid", func(b *testing.B) {
		l, err := local.Start(local.Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		b.SetBytes(int64(n) * sortbench.RecordSize)
		for i := 0; b.Loop(); i++ {
			out := filepath.Join(dir, fmt.Sprintf("out-%d", i))
			runTera(b, l, in, out, max(8, mb/64))
			b.StopTimer()
			if s := validateParts(b, out); s.Unordered != 0 || s.Checksum != want {
				b.Fatalf("output invalid: %+v", s)
			}
			os.RemoveAll(out)
			b.StartTimer()
		}
	})
	b.Run("gnu-sort", func(b *testing.B) {
		if _, err := exec.LookPath("sort"); err != nil {
			b.Skip("no sort command")
		}
		files, _ := filepath.Glob(filepath.Join(in, "*"))
		b.SetBytes(int64(n) * sortbench.RecordSize)
		for b.Loop() {
			out := filepath.Join(dir, "gnu-sorted")
			cmd := exec.Command("sort", append([]string{"-S", "50%", "-T", dir, "-o", out}, files...)...)
			cmd.Env = append(os.Environ(), "LC_ALL=C")
			if msg, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("sort: %v\n%s", err, msg)
			}
			b.StopTimer()
			f, err := os.Open(out)
			if err != nil {
				b.Fatal(err)
			}
			s, err := sortbench.Validate(bufio.NewReaderSize(f, 4<<20))
			f.Close()
			if err != nil || s.Unordered != 0 || s.Checksum != want {
				b.Fatalf("GNU sort output invalid: %+v %v", s, err)
			}
			os.Remove(out)
			b.StartTimer()
		}
	})
}

// TestSortByKeySkewedBinary sorts records whose keys are not UTF-8, half
// of which share one key, over 8 partitions (some of which come out
// empty), and an empty input: the output must be the input's records, in
// key order.
func TestSortByKeySkewedBinary(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	var want sortbench.Uint128
	var recs [][]byte
	rng := uint64(12345)
	next := func() byte {
		rng = rng*6364136223846793005 + 1442695040888963407
		return byte(rng >> 56)
	}
	for i := range 20_000 {
		rec := make([]byte, sortbench.RecordSize)
		for j := range rec {
			rec[j] = next()
		}
		if i%2 == 0 {
			copy(rec, "\xff\xfe\x00\x80skewed") // one key for half the records, not UTF-8
		}
		recs = append(recs, rec)
	}
	var all []byte
	for _, r := range recs {
		all = append(all, r...)
	}
	if err := os.WriteFile(filepath.Join(in, "a"), all, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "empty"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := sortbench.Validate(bytes.NewReader(all))
	if err != nil {
		t.Fatal(err)
	}
	want = s.Checksum
	l, err := local.Start(local.Config{Agents: 2, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	runTera(t, l, in, filepath.Join(dir, "out"), 8)
	got := validateParts(t, filepath.Join(dir, "out"))
	if got.Records != uint64(len(recs)) || got.Unordered != 0 || got.Checksum != want {
		t.Fatalf("sorted: %+v; want %d records in order with checksum %s", got, len(recs), want)
	}
	sizes := []int64{}
	outParts, _ := filepath.Glob(filepath.Join(dir, "out", "part-*"))
	for _, p := range outParts {
		fi, _ := os.Stat(p)
		sizes = append(sizes, fi.Size()/sortbench.RecordSize)
	}
	t.Logf("records per partition: %v", sizes)
	if got.Duplicates < uint64(len(recs)/2-1) {
		t.Errorf("%d duplicate keys, want the skewed half (%d)", got.Duplicates, len(recs)/2-1)
	}
	// An empty input sorts to empty parts.
	empty := filepath.Join(dir, "empty-in")
	os.MkdirAll(empty, 0o755)
	os.WriteFile(filepath.Join(empty, "none"), nil, 0o644)
	runTera(t, l, empty, filepath.Join(dir, "empty-out"), 3)
	parts, _ := filepath.Glob(filepath.Join(dir, "empty-out", "part-*"))
	if len(parts) != 3 {
		t.Errorf("empty input: %d part files, want 3", len(parts))
	}
	for _, p := range parts {
		if fi, err := os.Stat(p); err != nil || fi.Size() != 0 {
			t.Errorf("empty input gave part %s of %v bytes (%v)", p, fi.Size(), err)
		}
	}
}

// TestSortThenCoalesce sorts into 8 range partitions and coalesces them to
// 3 without a shuffle: 3 part files whose concatenation is still sorted.
func TestSortThenCoalesce(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	want := genTera(t, in, 50_000, 2, false)
	l, err := local.Start(local.Config{Agents: 2, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	job := sdk.NewJob("sort-coalesce")
	out := filepath.Join(dir, "out")
	job.RecordFile(filepath.Join(in, "*"), sortbench.RecordSize, sortbench.KeySize).SortByKey(8).Coalesce(3).Write(sdk.Records(out))
	if err := job.Run(context.Background(), l, io.Discard); err != nil {
		t.Fatal(err)
	}
	if parts, _ := filepath.Glob(filepath.Join(out, "part-*")); len(parts) != 3 {
		t.Fatalf("%d part files, want 3", len(parts))
	}
	if s := validateParts(t, out); s.Records != 50_000 || s.Unordered != 0 || s.Checksum != want {
		t.Fatalf("valsort: %+v", s)
	}
}

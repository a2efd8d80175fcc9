package tests

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/examples/logs"
	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

// accessLine is the grammar of a well-formed access-log line, as the logs
// example's Rust parser reads it: host ident user [time] "METHOD TARGET
// [PROTOCOL]" status size, then optionally a space and anything. Words of
// the request may hold backslash escapes (\"). The groups are the target
// and the status.
var accessLine = regexp.MustCompile(`^[^ ]+ [^ ]+ [^ ]+ \[[^\]]+\] "(?:[^"\\ ]|\\.)+ ((?:[^"\\ ]|\\.)+)(?: (?:[^"\\ ]|\\.)+)?" ([0-9]{3}) (?:[0-9]+|-)(?: .*)?$`)

// logReport is the logs example's report of the lines of some files,
// computed natively: every status code in code order, the malformed
// lines, then every path (the target without its query string) by count
// descending, then path.
type logReport struct {
	lines, malformed, withQuery int
	report                      []string
}

func referenceLogReport(t *testing.T, files []string) logReport {
	t.Helper()
	var r logReport
	status, path := map[string]int{}, map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			r.lines++
			m := accessLine.FindStringSubmatch(strings.TrimSuffix(line, "\n"))
			if m == nil {
				r.malformed++
				continue
			}
			p, _, query := strings.Cut(m[1], "?")
			if query {
				r.withQuery++
			}
			status[m[2]]++
			path[p]++
		}
	}
	for _, s := range slices.Sorted(maps.Keys(status)) {
		r.report = append(r.report, fmt.Sprintf("status\t%s\t%d", s, status[s]))
	}
	if r.malformed > 0 {
		r.report = append(r.report, fmt.Sprintf("malformed\t-\t%d", r.malformed))
	}
	paths := slices.SortedFunc(maps.Keys(path), func(a, b string) int {
		return cmp.Or(cmp.Compare(path[b], path[a]), strings.Compare(a, b))
	})
	for _, p := range paths {
		r.report = append(r.report, fmt.Sprintf("path\t%s\t%d", p, path[p]))
	}
	return r
}

// TestLogs runs the logs example, whose map is in Rust and whose reduce
// is in Go, on 4 MB of generated access logs in two files, over several
// splits and range partitions: the report of job.toml (its first
// logs.Top lines) and the whole report of the same job built with the SDK
// (logs.Job) must equal a native count, malformed lines and paths with
// query strings included.
func TestLogs(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, n := range []int{15_000, 10_000} {
		f := filepath.Join(dir, fmt.Sprintf("access-%d.log", i))
		var b bytes.Buffer
		if err := logs.Generate(&b, n, uint64(100+i)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	want := referenceLogReport(t, files)
	if want.malformed == 0 || want.withQuery == 0 || len(want.report) <= logs.Top {
		t.Fatalf("the generated logs do not exercise the job: %d lines, %d malformed, %d with a query string, %d report lines",
			want.lines, want.malformed, want.withQuery, len(want.report))
	}
	input := filepath.Join(dir, "*.log")
	conf := map[string]string{"partitions": "3", "source.split_size": "512KiB"}

	l, err := local.Start(local.Config{Agents: 2, Slots: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	run := func(t *testing.T, job *sdk.Job, report []string) {
		t.Helper()
		var out bytes.Buffer
		sum, err := l.Run(ctx, job, &out)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if !slices.Equal(got, report) {
			for i := range max(len(got), len(report)) {
				g, w := "(none)", "(none)"
				if i < len(got) {
					g = got[i]
				}
				if i < len(report) {
					w = report[i]
				}
				if g != w {
					t.Fatalf("report line %d is %q, want %q (%d lines, want %d)", i+1, g, w, len(got), len(report))
				}
			}
		}
		if sum.RecordsIn != int64(want.lines) {
			t.Errorf("%d records in, want one per line, %d", sum.RecordsIn, want.lines)
		}
	}
	t.Run("spec", func(t *testing.T) {
		job, err := sdk.LoadJob(ctx, repoPath("examples/logs/job.toml"), map[string]string{"input": input}, conf)
		if err != nil {
			t.Fatal(err)
		}
		run(t, job, want.report[:logs.Top])
	})
	t.Run("builder", func(t *testing.T) {
		b := logs.Job(logs.Config{Dir: repoPath("examples/logs"), Input: input, Top: 1 << 40})
		for k, v := range conf {
			b.Conf(k, v)
		}
		job, err := b.Build(ctx)
		if err != nil {
			t.Fatal(err)
		}
		run(t, job, want.report)
	})
}

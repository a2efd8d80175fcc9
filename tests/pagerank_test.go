package tests

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/examples/pagerank"
	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

// writeGraph writes a PageRank graph of pages pages and returns its path.
func writeGraph(t testing.TB, pages int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "edges.txt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pagerank.Graph(f, pages, 3); err != nil {
		t.Fatal(err)
	}
	// Lines the job must skip: a page alone and a blank line.
	fmt.Fprintln(f, "lonely")
	fmt.Fprintln(f)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// referenceRanks computes the ranks of 10 iterations natively.
func referenceRanks(t testing.TB, edges string) map[string]float64 {
	t.Helper()
	f, err := os.Open(edges)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := pagerank.Reference(f, 10)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// parseRanks reads a result of "page<TAB>rank" lines.
func parseRanks(t testing.TB, out string) map[string]float64 {
	t.Helper()
	ranks := map[string]float64{}
	for line := range strings.Lines(out) {
		page, rank, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		r, err := strconv.ParseFloat(rank, 64)
		if !ok || err != nil {
			t.Fatalf("result line %q is not page<TAB>rank", line)
		}
		if _, dup := ranks[page]; dup {
			t.Fatalf("page %s ranked twice", page)
		}
		ranks[page] = r
	}
	return ranks
}

// runPageRank runs examples/pagerank/job.toml and reads its ranks.
func runPageRank(t testing.TB, l *local.Grid, edges string, cache bool) (map[string]float64, *api.Summary) {
	t.Helper()
	ctx := context.Background()
	job, err := sdk.LoadJob(ctx, repoPath("examples/pagerank/job.toml"),
		map[string]string{"edges": edges, "cache": strconv.FormatBool(cache)}, map[string]string{"partitions": "4"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sum, err := l.Run(ctx, job, &out)
	if err != nil {
		t.Fatal(err)
	}
	return parseRanks(t, out.String()), sum
}

// TestPageRank runs 10 iterations with and without caching the links:
// both give a native reference's ranks within 1e-9, and the cached job
// computes the links once.
func TestPageRank(t *testing.T) {
	edges := writeGraph(t, 3000)
	want := referenceRanks(t, edges)
	l, err := local.Start(local.Config{Agents: 2, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, cache := range []bool{true, false} {
		got, sum := runPageRank(t, l, edges, cache)
		if len(got) != len(want) {
			t.Errorf("cache %v: %d pages ranked, want %d", cache, len(got), len(want))
		}
		worst := 0.0
		for _, p := range pagerank.Pages(want) {
			d := math.Abs(got[p] - want[p])
			if _, ok := got[p]; !ok || d > 1e-9 {
				t.Errorf("cache %v: page %s: rank %v, want %v", cache, p, got[p], want[p])
			}
			worst = max(worst, d)
		}
		// Reading the edges is the only source stage: once with the
		// cache, in every iteration (and for the first ranks) without.
		sources := strings.Count(sum.Plan, "source (")
		if cache && sources != 1 || !cache && sources != 11 {
			t.Errorf("cache %v: the plan reads the edges %d times:\n%s", cache, sources, sum.Plan)
		}
		t.Logf("cache %v: %d pages, largest difference %.2g, %d stages, %d tasks, %v (task round trip p50 %v, p99 %v)", cache, len(got), worst, sum.Stages, sum.Tasks, sum.Duration, sum.RoundTripP50, sum.RoundTripP99)
	}
}

// BenchmarkPageRank runs 10 iterations on a 100,000-page graph with the
// links cached and computed again in every iteration, and the native
// reference (one goroutine), in the same run.
func BenchmarkPageRank(b *testing.B) {
	edges := writeGraph(b, 100_000)
	l, err := local.Start(local.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var with, without, native float64
	for range b.N {
		_, sum := runPageRank(b, l, edges, true)
		with += sum.Duration.Seconds()
		_, sum = runPageRank(b, l, edges, false)
		without += sum.Duration.Seconds()
		start := time.Now()
		referenceRanks(b, edges)
		native += time.Since(start).Seconds()
	}
	b.ReportMetric(with/float64(b.N), "s/job-cached")
	b.ReportMetric(without/float64(b.N), "s/job-uncached")
	b.ReportMetric(native/float64(b.N), "s/native")
	b.ReportMetric(without/with, "uncached/cached")
	b.ReportMetric(with/native, "cached/native")
}

// TestClusterPageRankAgentLost runs PageRank with cached links on a
// coordinator and three agent processes, kills an agent with SIGKILL once
// the links are cached, and still gets the native ranks: the partitions
// of the cache and of the shuffles it held are computed again from their
// lineage.
func TestClusterPageRankAgentLost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	edges := writeGraph(t, 30000)
	want := referenceRanks(t, edges)
	c := startCluster(t, 3)
	ctx := context.Background()
	remote := c.remote(c.admin)
	job, err := sdk.LoadJob(ctx, repoPath("examples/pagerank/job.toml"), map[string]string{"edges": edges}, map[string]string{"partitions": "6"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := remote.Submit(ctx, job, "")
	if err != nil {
		t.Fatal(err)
	}
	// Stage 2 ends with the links' cache.
	var info api.JobInfo
	waitFor(t, 2*time.Minute, "the links to be cached", func() bool {
		if info, err = remote.Job(ctx, id); err != nil {
			t.Fatal(err)
		}
		return info.State != "running" || len(info.Stages) > 2 && info.Stages[2].Done == info.Stages[2].Tasks
	})
	if info.State != "running" {
		t.Fatalf("the job ended (%s %s) before an agent could be killed: use a larger graph", info.State, info.Error)
	}
	c.kill9("agent-2")
	if info, err = remote.Watch(ctx, id, nil); err != nil || info.State != "succeeded" {
		t.Fatalf("job after the kill: %s %s %v", info.State, info.Error, err)
	}
	var out bytes.Buffer
	if err := remote.Result(ctx, id, &out); err != nil {
		t.Fatal(err)
	}
	got := parseRanks(t, out.String())
	if len(got) != len(want) {
		t.Errorf("%d pages ranked, want %d", len(got), len(want))
	}
	for _, p := range pagerank.Pages(want) {
		if math.Abs(got[p]-want[p]) > 1e-9 {
			t.Fatalf("page %s: rank %v, want %v", p, got[p], want[p])
		}
	}
	sum := info.Summary
	t.Logf("%d tasks, %d attempts (%d failed) in %v", sum.Tasks, sum.Attempts, sum.FailedAttempts, sum.Duration)
	if sum.Attempts <= sum.Tasks {
		t.Errorf("%d attempts for %d tasks: nothing was lost with agent-2", sum.Attempts, sum.Tasks)
	}
	// The attempts that agent-2 ran when it was killed end lost, and grid
	// logs shows them.
	logs, err := remote.Logs(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, l := range logs {
		if l.Outcome == "lost" {
			lost++
			if l.Agent != "agent-2" {
				t.Errorf("an attempt on %s ended lost: %+v", l.Agent, l)
			}
		}
	}
	cli, err := c.cli(c.admin, "logs", id)
	if err != nil {
		t.Fatal(err)
	}
	if shown := strings.Count(cli, " on agent-2: lost in "); shown != lost {
		t.Errorf("grid logs shows %d lost attempts, the API %d", shown, lost)
	}
	t.Logf("%d attempts on agent-2 ended lost", lost)
}

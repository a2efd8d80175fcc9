package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

type benchFlags struct {
	client      clientFlags
	remote      bool
	tasks, jobs int
	guest       string
	moduleDir   string
	agents      int
	slots       int
}

func newBenchCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the grid",
	}
	cmd.AddCommand(newBenchTasksCmd(g))
	return cmd
}

func newBenchTasksCmd(g *globals) *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "tasks",
		Short: "Measure task dispatch: many tiny tasks of one job, and one-task jobs one after another",
		Long: `Bench tasks measures what a task costs the grid beyond its own work. It runs,
on an embedded grid started for it (or, with --remote, on the grid that
GRID_ADDR names, such as one of grid up):

  1. a job of --tasks tiny tasks (a flat_map over an inline source, one
     record per task, the result printed to a discarded standard output):
     tasks/s from submission to the result, and per task the time from its
     launch to its guest's start (p50, p99) and from its launch to its
     report reaching the coordinator;
  2. --jobs jobs of one such task, submitted one after another, each waited
     for and its result read: per job the time from submission to its
     task's start and to its result in the client's hands (p50, p99).

A warm-up job runs first (it compiles the module and starts the executors)
and is not counted. The module is examples/wordcount/guest/LANG of this
repository (run from its root, or pass --module-dir).`,
		Example: `  grid bench tasks
  grid bench tasks --tasks 5000 --jobs 500 --guest go
  . /tmp/grid/grid.env && grid bench tasks --remote`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return benchTasks(cmd.Context(), g, f)
		},
	}
	fl := cmd.Flags()
	f.client.add(cmd)
	fl.BoolVar(&f.remote, "remote", false, "measure the running grid that --addr or GRID_ADDR names instead of an embedded one")
	fl.IntVar(&f.tasks, "tasks", 2000, "tasks of the many-task job")
	fl.IntVar(&f.jobs, "jobs", 200, "one-task jobs to run one after another")
	fl.StringVar(&f.guest, "guest", "c", "the guest's language: c, rust, assemblyscript or go")
	fl.StringVar(&f.moduleDir, "module-dir", "", "the guest module's directory (default examples/wordcount/guest/LANG)")
	fl.IntVar(&f.agents, "agents", 1, "agents of the embedded grid")
	fl.IntVar(&f.slots, "slots", 0, "task slots of the embedded grid over all agents (default: the number of CPUs)")
	return cmd
}

// benchGrid is the grid a benchmark runs jobs on.
type benchGrid interface {
	// run submits job, waits for it, reads its result, and returns its
	// summary and attempt logs.
	run(ctx context.Context, job *sdk.Job) (sum *api.Summary, logs []api.TaskLog, result []byte, err error)
	close()
}

type embeddedBench struct{ g *local.Grid }

func (e embeddedBench) run(ctx context.Context, job *sdk.Job) (*api.Summary, []api.TaskLog, []byte, error) {
	j, err := e.g.Submit(ctx, job)
	if err != nil {
		return nil, nil, nil, err
	}
	sum, err := j.Wait(ctx)
	if err != nil {
		return sum, nil, nil, err
	}
	var out bytes.Buffer
	if err := local.CopyResult(j, &out); err != nil {
		return sum, nil, nil, err
	}
	return sum, j.Logs(), out.Bytes(), nil
}

func (e embeddedBench) close() { e.g.Close() }

type remoteBench struct{ r *sdk.Remote }

func (b remoteBench) run(ctx context.Context, job *sdk.Job) (*api.Summary, []api.TaskLog, []byte, error) {
	var out bytes.Buffer
	info, err := b.r.Run(ctx, job, &out)
	if err != nil {
		return info.Summary, nil, nil, err
	}
	logs, err := b.r.Logs(ctx, info.ID, "")
	return info.Summary, logs, out.Bytes(), err
}

func (remoteBench) close() {}

// benchJob writes a job of n tasks, one record each, and loads it.
func benchJob(ctx context.Context, dir, moduleDir string, n int) (*sdk.Job, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "name = \"bench-%d-tasks\"\n\n[modules.wc]\ndir = %s\n\n[source]\ninline = [", n, strconv.Quote(moduleDir))
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "\"w%d\"", i)
	}
	fmt.Fprintf(&b, "]\nparts = %d\n\n[[steps]]\nflat_map = \"wc.split\"\n\n[sink]\ntext = \"-\"\n", n)
	path := filepath.Join(dir, fmt.Sprintf("bench-%d.toml", n))
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	return sdk.LoadJob(ctx, path, nil, nil)
}

func benchTasks(ctx context.Context, g *globals, f *benchFlags) error {
	if f.tasks < 1 || f.jobs < 1 {
		return errors.New("--tasks and --jobs must be at least 1")
	}
	moduleDir := f.moduleDir
	if moduleDir == "" {
		moduleDir = filepath.Join("examples", "wordcount", "guest", f.guest)
		if _, err := os.Stat(moduleDir); err != nil {
			return fmt.Errorf("no module for --guest %s at %s: run grid bench from the repository's root, or pass --module-dir", f.guest, moduleDir)
		}
	}
	moduleDir, err := filepath.Abs(moduleDir)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "grid-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	many, err := benchJob(ctx, dir, moduleDir, f.tasks)
	if err != nil {
		return err
	}
	one, err := benchJob(ctx, dir, moduleDir, 1)
	if err != nil {
		return err
	}

	var bg benchGrid
	where := ""
	if f.remote {
		r, err := f.client.remote()
		if err != nil {
			return err
		}
		bg, where = remoteBench{r}, "the grid at "+cmp.Or(f.client.addr, os.Getenv("GRID_ADDR"))
	} else {
		logger, err := g.logger()
		if err != nil {
			return err
		}
		l, err := local.Start(local.Config{Agents: f.agents, Slots: f.slots, Logger: logger})
		if err != nil {
			return err
		}
		bg, where = embeddedBench{l}, fmt.Sprintf("an embedded grid of %d agents, %d slots", f.agents, l.Slots())
	}
	defer bg.close()
	fmt.Fprintf(g.stderr, "bench tasks on %s, %s guest (%s)\n", where, f.guest, moduleDir)

	// The warm-up: the module compiles, the executors start.
	warm := time.Now()
	if _, _, _, err := bg.run(ctx, one); err != nil {
		return fmt.Errorf("warm-up job: %w", err)
	}
	fmt.Fprintf(g.stderr, "warm-up job in %s\n", time.Since(warm).Round(time.Millisecond))

	rep := benchReport{Where: where, Guest: f.guest, Tasks: f.tasks, Jobs: f.jobs}
	start := time.Now()
	sum, logs, out, err := bg.run(ctx, many)
	if err != nil {
		return fmt.Errorf("the job of %d tasks: %w", f.tasks, err)
	}
	elapsed := time.Since(start)
	if lines := bytes.Count(out, []byte("\n")); lines != f.tasks {
		return fmt.Errorf("the job of %d tasks printed %d lines, want %d", f.tasks, lines, f.tasks)
	}
	rep.ManySeconds = elapsed.Seconds()
	rep.TasksPerSecond = float64(f.tasks) / elapsed.Seconds()
	var launchStart []time.Duration
	for _, l := range logs {
		if l.Outcome == "succeeded" && !l.Started.IsZero() && !l.Launched.IsZero() {
			launchStart = append(launchStart, l.Started.Sub(l.Launched))
		}
	}
	rep.LaunchToStart = quantiles(launchStart)
	if sum != nil {
		rep.LaunchToReport = benchQuantiles{P50: ms(sum.RoundTripP50), P99: ms(sum.RoundTripP99)}
	}
	fmt.Fprintf(g.stderr, "%d tasks of one job in %s\n", f.tasks, elapsed.Round(time.Millisecond))

	var toStart, toResult []time.Duration
	start = time.Now()
	for i := 0; i < f.jobs; i++ {
		t0 := time.Now()
		_, logs, out, err := bg.run(ctx, one)
		var ae *sdk.APIError
		if errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests {
			// The token's request rate (limits.requests_per_second): the
			// job is run again once the limit allows, and timed afresh.
			rep.RateLimited++
			select {
			case <-time.After(max(ae.RetryAfter, 100*time.Millisecond)):
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			i--
			continue
		}
		if err != nil {
			return fmt.Errorf("one-task job %d: %w", i+1, err)
		}
		toResult = append(toResult, time.Since(t0))
		if len(out) == 0 {
			return fmt.Errorf("one-task job %d printed nothing", i+1)
		}
		for _, l := range logs {
			if l.Outcome == "succeeded" && !l.Started.IsZero() {
				toStart = append(toStart, l.Started.Sub(t0))
			}
		}
	}
	rep.JobsPerSecond = float64(f.jobs) / time.Since(start).Seconds()
	rep.SubmitToStart, rep.SubmitToResult = quantiles(toStart), quantiles(toResult)

	if f.client.output == "json" {
		return printJSON(g.stdout, rep)
	}
	rep.print(g.stdout)
	return nil
}

// benchReport is what bench tasks prints; durations in milliseconds.
type benchReport struct {
	Where          string         `json:"where"`
	Guest          string         `json:"guest"`
	Tasks          int            `json:"tasks"`
	ManySeconds    float64        `json:"many_seconds"`
	TasksPerSecond float64        `json:"tasks_per_second"`
	LaunchToStart  benchQuantiles `json:"launch_to_start_ms"`
	LaunchToReport benchQuantiles `json:"launch_to_report_ms"`
	Jobs           int            `json:"jobs"`
	JobsPerSecond  float64        `json:"jobs_per_second"`
	SubmitToStart  benchQuantiles `json:"submit_to_start_ms"`
	SubmitToResult benchQuantiles `json:"submit_to_result_ms"`
	// RateLimited counts the one-task jobs refused by the token's request
	// rate, waited for and run again (their waits are in jobs/s).
	RateLimited int `json:"rate_limited,omitempty"`
}

type benchQuantiles struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func quantiles(ds []time.Duration) benchQuantiles {
	if len(ds) == 0 {
		return benchQuantiles{}
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(int(q*float64(len(ds))), len(ds)-1)] }
	return benchQuantiles{P50: ms(at(0.50)), P99: ms(at(0.99))}
}

func (r benchReport) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%d tasks of one job\t%.0f tasks/s\t(%.3f s)\n", r.Tasks, r.TasksPerSecond, r.ManySeconds)
	fmt.Fprintf(tw, "  launch -> task start\tp50 %.2f ms\tp99 %.2f ms\n", r.LaunchToStart.P50, r.LaunchToStart.P99)
	fmt.Fprintf(tw, "  launch -> report\tp50 %.2f ms\tp99 %.2f ms\n", r.LaunchToReport.P50, r.LaunchToReport.P99)
	fmt.Fprintf(tw, "%d one-task jobs, one at a time\t%.1f jobs/s\t\n", r.Jobs, r.JobsPerSecond)
	if r.RateLimited > 0 {
		fmt.Fprintf(tw, "  refused by the token's request rate, waited for\t%d times\t\n", r.RateLimited)
	}
	fmt.Fprintf(tw, "  submit -> task start\tp50 %.2f ms\tp99 %.2f ms\n", r.SubmitToStart.P50, r.SubmitToStart.P99)
	fmt.Fprintf(tw, "  submit -> result\tp50 %.2f ms\tp99 %.2f ms\n", r.SubmitToResult.P50, r.SubmitToResult.P99)
	tw.Flush()
}

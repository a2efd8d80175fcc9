package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"
	"github.com/wasmgrid/wasmgrid/grid"
	"github.com/wasmgrid/wasmgrid/sdk"
)

type runFlags struct {
	params, conf []string
	agents       int
	slots        int
	progress     string
	explain      bool
	cpuProfile   string
}

func newRunCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run JOB.toml",
		Short: "Run a job on an embedded grid in this process",
		Long: `Run starts a coordinator and agents in this process, runs the job described
by JOB.toml (docs/jobspec.md), shows its progress on standard error, and
prints a summary when it ends. A job whose sink is "-" prints its result on
standard output.`,
		Example: `  grid run examples/wordcount/job.toml
  grid run examples/wordcount/job.toml --param input='books/*.txt' --param output=counts --conf partitions=8`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runJob(cmd.Context(), g, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.params, "param", "p", nil, "set a job parameter: name=value (repeatable)")
	fl.StringArrayVarP(&f.conf, "conf", "c", nil, "override a setting of the job's [conf]: key=value (repeatable)")
	fl.IntVar(&f.agents, "agents", 1, "agents in the embedded grid")
	fl.IntVar(&f.slots, "slots", 0, "tasks that run at once over all agents (default: the number of CPUs)")
	fl.StringVar(&f.progress, "progress", "auto", "progress display: auto (bars on a terminal, lines otherwise), bars, lines or none")
	fl.BoolVar(&f.explain, "explain", false, "print the job's physical plan before running it")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	return cmd
}

func runJob(ctx context.Context, g *globals, f *runFlags, path string) error {
	logger, err := g.logger()
	if err != nil {
		return err
	}
	params, err := assignments("param", f.params)
	if err != nil {
		return err
	}
	conf, err := assignments("conf", f.conf)
	if err != nil {
		return err
	}
	mode, err := progressMode(f.progress, g.stderr)
	if err != nil {
		return err
	}
	job, err := sdk.LoadJob(ctx, path, params, conf)
	if err != nil {
		return err
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	local, err := sdk.StartLocal(sdk.LocalConfig{Agents: f.agents, Slots: f.slots, Logger: logger})
	if err != nil {
		return err
	}
	defer local.Close()

	j, err := local.Submit(ctx, job)
	if err != nil {
		return err
	}
	if f.explain {
		fmt.Fprint(g.stderr, j.Plan())
	}
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		watchProgress(j, mode, g.stderr)
	}()
	sum, err := j.Wait(ctx)
	<-watchDone
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		j.Cancel()
		return fmt.Errorf("interrupted")
	}
	if err != nil {
		printSummary(g, sum, false)
		return err
	}
	if sum.Stdout {
		w := bufio.NewWriterSize(g.stdout, 1<<20)
		if err := sdk.CopyResult(j, w); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	printSummary(g, sum, true)
	return nil
}

func printSummary(g *globals, s *grid.Summary, ok bool) {
	if s == nil {
		return
	}
	status := "succeeded"
	if !ok {
		status = "failed"
	}
	mb := float64(s.BytesIn) / 1e6
	secs := s.Duration.Seconds()
	fmt.Fprintf(g.stderr, "job %s (%s) %s in %s\n", s.Name, s.Job, status, s.Duration.Round(time.Millisecond))
	fmt.Fprintf(g.stderr, "  records: %d in (%.1f MB, %.1f MB/s), %d out\n", s.RecordsIn, mb, mb/max(secs, 1e-9), s.RecordsOut)
	fmt.Fprintf(g.stderr, "  stages: %d, tasks: %d, attempts: %d (%d failed)\n", s.Stages, s.Tasks, s.Attempts, s.FailedAttempts)
	if ok && !s.Stdout {
		fmt.Fprintf(g.stderr, "  output: %s\n", s.Output)
	}
}

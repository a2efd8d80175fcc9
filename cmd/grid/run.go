package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

type runFlags struct {
	params, conf []string
	agents       int
	slots        int
	progress     string
	explain      bool
	cpuProfile   string
	metricsAddr  string
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
	fl.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics while the job runs (e.g. 127.0.0.1:9090)")
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
	cfg := local.Config{Agents: f.agents, Slots: f.slots, Logger: logger}
	if f.metricsAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Metrics = reg
		stop, err := serveMetrics(f.metricsAddr, reg, g.stderr)
		if err != nil {
			return err
		}
		defer stop()
	}
	eg, err := local.Start(cfg)
	if err != nil {
		return err
	}
	defer eg.Close()

	j, err := eg.Submit(ctx, job)
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
	if ctx.Err() != nil {
		// Interrupted: the job is canceled, and closing the grid stops
		// its attempts (their executors are killed if they do not stop
		// within their grace) and removes its temporary directory.
		j.Cancel()
		eg.Close()
		<-watchDone
		cause := context.Cause(ctx)
		fmt.Fprintf(g.stderr, "job %s (%s) canceled: %v\n", j.ID(), job.Spec.Name, cause)
		return cause
	}
	<-watchDone
	if err != nil {
		printSummary(g, sum, false)
		return err
	}
	if sum.Stdout {
		w := bufio.NewWriterSize(g.stdout, 1<<20)
		if err := local.CopyResult(j, w); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	printSummary(g, sum, true)
	return nil
}

func printSummary(g *globals, s *api.Summary, ok bool) {
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
	fmt.Fprintf(g.stderr, "  stages: %d, tasks: %d, attempts: %d (%d failed), executor peak memory: %d MiB\n", s.Stages, s.Tasks, s.Attempts, s.FailedAttempts, s.ExecutorPeakRSS>>20)
	if ok && !s.Stdout {
		fmt.Fprintf(g.stderr, "  output: %s\n", s.Output)
	}
}

// serveMetrics serves reg at http://addr/metrics until stop is called.
func serveMetrics(addr string, reg *prometheus.Registry, stderr io.Writer) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	fmt.Fprintf(stderr, "metrics at http://%s/metrics\n", ln.Addr())
	return func() {
		srv.Close()
		<-done
	}, nil
}

// Command logs generates synthetic access logs and runs the logs job,
// built in Go with the SDK (logs.Job), on an embedded grid:
//
//	logs gen [-n LINES] [-seed N] [FILE]           # to FILE, or standard output
//	logs run [-input GLOB] [-top N] [-explain]     # the report on standard output
//
// Run it from the repository's root (go run ./examples/logs/cmd/logs ...):
// the job finds its guests under examples/logs. The sample in
// examples/logs/data is
//
//	go run ./examples/logs/cmd/logs gen -n 300 -seed 1 examples/logs/data/access.log
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"

	"github.com/wasmgrid/wasmgrid/examples/internal/excmd"
	"github.com/wasmgrid/wasmgrid/examples/logs"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

func main() {
	// The embedded grid runs its tasks in executor processes, which are
	// this program started again.
	local.MainIfExecutor()
	excmd.Subcommands("logs", usage, map[string]func([]string) error{"gen": gen, "run": run})
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: logs gen [-n LINES] [-seed N] [FILE] | logs run [-input GLOB] [-top N] [-explain]")
	os.Exit(2)
}

// gen writes a synthetic access log.
func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	n := fs.Int("n", 300, "lines")
	seed := fs.Uint64("seed", 1, "the seed: the same seed writes the same lines")
	fs.Parse(args)
	if fs.NArg() > 1 {
		usage()
	}
	if fs.NArg() == 0 {
		return logs.Generate(os.Stdout, *n, *seed)
	}
	f, err := os.Create(fs.Arg(0))
	if err != nil {
		return err
	}
	if err := logs.Generate(f, *n, *seed); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// run builds the job with logs.Job and runs it on an embedded grid.
func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	input := fs.String("input", "", "access logs, a glob (default: the sample in examples/logs/data)")
	top := fs.Int64("top", logs.Top, "lines of the report")
	explain := fs.Bool("explain", false, "print the job's plan on standard error first")
	fs.Parse(args)
	if fs.NArg() != 0 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	job := logs.Job(logs.Config{Input: *input, Top: *top})
	if *explain {
		plan, err := job.Explain(runtime.NumCPU())
		if err != nil {
			return err
		}
		fmt.Fprint(os.Stderr, plan)
	}
	sum, err := local.Run(ctx, job, os.Stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d lines in, %d out, in %s\n", sum.RecordsIn, sum.RecordsOut, sum.Duration.Round(1e6))
	return nil
}

package local_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

// TestMain lets the test binary serve as the executors of the grids that
// the examples start.
func TestMain(m *testing.M) {
	local.MainIfExecutor()
	os.Exit(m.Run())
}

// Start a grid of two agents, which share four task slots, and run a job
// built in Go on it; Close stops the grid and removes its files.
func ExampleStart() {
	g, err := local.Start(local.Config{Agents: 2, Slots: 4, CacheDir: "off"})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	job := sdk.NewJob("letters").Conf("partitions", "4")
	wc := job.Module("wc", sdk.GoGuest("../../examples/wordcount/guest/go"))
	job.Parallelize([]string{"a b", "b c", "c a b"}, 3).FlatMap(wc.Func("split")).ReduceByKey(wc.Func("sum")).Write(sdk.Stdout())
	built, err := job.Build(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	var out bytes.Buffer
	sum, err := g.Run(context.Background(), built, &out)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(g.Slots(), "slots,", sum.Tasks, "tasks,", sum.RecordsOut, "letters; b:", strings.Contains(out.String(), "b\t3"))
	// Output:
	// 4 slots, 7 tasks, 3 letters; b: true
}

// Run builds a job and runs it on a grid of the machine's cores, started
// for it and stopped after it.
func ExampleRun() {
	ctx := context.Background()
	job := sdk.NewJob("words").Conf("partitions", "2")
	wc := job.Module("wc", sdk.GoGuest("../../examples/wordcount/guest/go"))
	job.Parallelize([]string{"the cat", "the hat"}, 1).FlatMap(wc.Func("split")).ReduceByKey(wc.Func("sum")).Write(sdk.Stdout())
	var out bytes.Buffer
	if _, err := local.Run(ctx, job, &out); err != nil {
		log.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	fmt.Println(len(lines), "words; the:", strings.Contains(out.String(), "the\t2"))
	// Output:
	// 3 words; the: true
}

// The main function of a program that runs jobs on an embedded grid calls
// MainIfExecutor first: the grid starts its executors from the program's
// own binary, and in them MainIfExecutor runs the executor and never
// returns. (A test binary calls it in TestMain.)
func ExampleMainIfExecutor() {
	local.MainIfExecutor()
	ctx := context.Background()
	job, err := sdk.LoadJob(ctx, "job.toml", nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	g, err := local.Start(local.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	if _, err := g.Run(ctx, job, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// Submit starts a job and returns at once: its Progress channel carries
// snapshots while it runs, Wait its summary, and CopyResult its result
// when the sink is standard output.
func ExampleGrid_Submit() {
	ctx := context.Background()
	job, err := sdk.LoadJob(ctx, "../../examples/wordcount/job.toml", nil, map[string]string{"partitions": "2"})
	if err != nil {
		log.Fatal(err)
	}
	g, err := local.Start(local.Config{Slots: 2, CacheDir: "off"})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	j, err := g.Submit(ctx, job)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for p := range j.Progress() {
			fmt.Fprintf(os.Stderr, "%s: %d records in\n", p.Job, p.RecordsIn)
		}
	}()
	sum, err := j.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	var out bytes.Buffer
	if err := local.CopyResult(j, &out); err != nil {
		log.Fatal(err)
	}
	fmt.Println(sum.Job, sum.Stages, "stages,", strings.Count(out.String(), "\n"), "lines")
	// Output:
	// job-1 2 stages, 153 lines
}

// A Grid is an sdk.Grid: JobBuilder.Run and the actions Count and
// Collect run their jobs on it (through RunJob).
func ExampleGrid_RunJob() {
	ctx := context.Background()
	g, err := local.Start(local.Config{Slots: 2, CacheDir: "off"})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	job := sdk.NewJob("count").Conf("partitions", "2")
	wc := job.Module("wc", sdk.GoGuest("../../examples/wordcount/guest/go"))
	n, err := job.TextFile("../../examples/wordcount/data/*.txt").FlatMap(wc.Func("split")).Count(ctx, g)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, "words")
	// Output:
	// 309 words
}

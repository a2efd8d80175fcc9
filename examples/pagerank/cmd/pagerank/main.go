// Command pagerank is the PageRank example as a Go SDK program: it builds
// the job that examples/pagerank/job.toml describes with sdk.NewJob and
// runs it on an embedded grid, or writes a synthetic graph.
//
//	pagerank gen -pages 100000 > edges.txt
//	pagerank run [-edges FILE] [-iterations 10] [-cache=false] [-explain] [-top 10]
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"

	"github.com/wasmgrid/wasmgrid/examples/internal/excmd"
	"github.com/wasmgrid/wasmgrid/examples/pagerank"
	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

func main() {
	local.MainIfExecutor()
	excmd.Subcommands("pagerank", usage, map[string]func([]string) error{"gen": gen, "run": run})
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: pagerank gen [-pages N] [-seed S] | pagerank run [-edges FILE] [-iterations N] [-cache=false] [-explain] [-top N]")
	os.Exit(2)
}

func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	pages := fs.Int("pages", 10000, "pages of the graph")
	seed := fs.Uint64("seed", 1, "the graph's seed")
	fs.Parse(args)
	return pagerank.Graph(os.Stdout, *pages, *seed)
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	edges := fs.String("edges", exampleDir("data/edges.txt"), "the graph: one \"src dst\" line per link")
	iterations := fs.Int("iterations", 10, "iterations")
	cache := fs.Bool("cache", true, "cache the links (without, every iteration computes them again)")
	explain := fs.Bool("explain", false, "print the plan and exit")
	top := fs.Int("top", 10, "print the top N pages by rank (0: every page, by name)")
	fs.Parse(args)
	var out bytes.Buffer
	job := Job(sdk.GoGuest(exampleDir("guest/go")), *edges, *iterations, *cache, sdk.Stdout())
	if *explain {
		plan, err := job.Explain(runtime.NumCPU())
		fmt.Print(plan)
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sum, err := local.Run(ctx, job, &out)
	if err != nil {
		return err
	}
	type page struct {
		name string
		rank float64
	}
	var pages []page
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		name, rank, _ := bytes.Cut(sc.Bytes(), []byte("\t"))
		r, err := strconv.ParseFloat(string(rank), 64)
		if err != nil {
			return fmt.Errorf("a result line %q has no rank", sc.Text())
		}
		pages = append(pages, page{string(name), r})
	}
	if *top > 0 {
		sort.Slice(pages, func(i, j int) bool {
			if pages[i].rank != pages[j].rank {
				return pages[i].rank > pages[j].rank
			}
			return pages[i].name < pages[j].name
		})
		pages = pages[:min(*top, len(pages))]
	} else {
		sort.Slice(pages, func(i, j int) bool { return pages[i].name < pages[j].name })
	}
	for _, p := range pages {
		fmt.Printf("%s\t%.6f\n", p.name, p.rank)
	}
	fmt.Fprintf(os.Stderr, "%d iterations in %v (%d tasks)\n", *iterations, sum.Duration.Round(1e6), sum.Tasks)
	return nil
}

// exampleDir is a path in examples/pagerank, found from the working
// directory (the repository or the example's directory).
func exampleDir(rel string) string {
	for _, base := range []string{"examples/pagerank", ".", "../.."} {
		if _, err := os.Stat(filepath.Join(base, "job.toml")); err == nil {
			return filepath.Join(base, rel)
		}
	}
	return filepath.Join("examples/pagerank", rel)
}

// Job builds the PageRank job with the SDK: the same job as job.toml
// (with its cache parameter set to cache). mod is the guest module.
func Job(mod sdk.ModuleSource, edges string, iterations int, cache bool, out sdk.Sink) *sdk.JobBuilder {
	job := sdk.NewJob("pagerank")
	pr := job.Module("pr", mod)
	links := job.TextFile(edges).
		Map(pr.Func("edge")).
		Filter(pr.Func("well_formed")).
		Distinct(0).
		GroupByKey(0)
	if cache {
		links.Cache()
	}
	ranks := links.MapValues(pr.Func("first_rank"))
	for range iterations {
		ranks = ranks.Join(links).
			FlatMap(pr.Func("contribs")).
			ReduceByKey(pr.Func("sum")).
			MapValues(pr.Func("damp"))
	}
	ranks.MapValues(pr.Func("format")).Write(out)
	return job
}

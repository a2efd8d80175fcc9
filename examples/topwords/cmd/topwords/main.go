// Command topwords is the topwords example as a Go SDK program: the 100
// most frequent words, the job of examples/topwords/job.toml built with
// sdk.NewJob and run on an embedded grid.
//
//	go run ./examples/topwords/cmd/topwords [-input GLOB] [-top 100] [-explain]
package main

import (
	"flag"

	"github.com/wasmgrid/wasmgrid/examples/internal/excmd"
	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

// Job builds the top-words job: a word count, sorted by count descending
// over range partitions, cut to the top n.
func Job(guest sdk.ModuleSource, input string, n int64) *sdk.JobBuilder {
	job := sdk.NewJob("topwords")
	tw := job.Module("tw", guest)
	job.TextFile(input).
		FlatMap(tw.Func("split")).
		ReduceByKey(tw.Func("sum")).
		Map(tw.Func("by_count")).
		SortByKey(0).
		Map(tw.Func("format")).
		Take(n, sdk.Stdout())
	return job
}

func main() {
	local.MainIfExecutor()
	input := flag.String("input", "examples/wordcount/data/*.txt", "text files, a glob")
	top := flag.Int64("top", 100, "how many words")
	explain := flag.Bool("explain", false, "print the plan and exit")
	guest := flag.String("guest", "examples/topwords/guest/go", "the guest's Go package directory")
	flag.Parse()
	job := Job(sdk.GoGuest(*guest), *input, *top)
	excmd.RunOrExplain("topwords", job, *explain)

}

// Command pi is the pi example as a Go SDK program: SparkPi's Monte Carlo
// estimate, the job of examples/pi/job.toml built with sdk.NewJob and run
// on an embedded grid.
//
//	go run ./examples/pi/cmd/pi [-throws 1000000] [-explain]
package main

import (
	"flag"

	"github.com/wasmgrid/wasmgrid/examples/internal/excmd"
	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

// Job builds the pi job: throws points, counted in the quarter circle.
func Job(guest sdk.ModuleSource, throws int64) *sdk.JobBuilder {
	job := sdk.NewJob("pi")
	pi := job.Module("pi", guest)
	job.Generate(throws).
		Map(pi.Func("throw")).
		ReduceByKey(pi.Func("sum")).
		Map(pi.Func("format")).
		Write(sdk.Stdout())
	return job
}

func main() {
	local.MainIfExecutor()
	throws := flag.Int64("throws", 1_000_000, "points to throw")
	explain := flag.Bool("explain", false, "print the plan and exit")
	guest := flag.String("guest", "examples/pi/guest/go", "the guest's Go package directory (the default is from the repository's root)")
	flag.Parse()
	job := Job(sdk.GoGuest(*guest), *throws)
	excmd.RunOrExplain("pi", job, *explain)

}

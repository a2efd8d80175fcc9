// Package excmd holds what the examples' Go SDK programs share: running a
// job on an embedded grid or printing its plan, and dispatching
// subcommands, so that each program shows only its own job.
package excmd

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"

	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

// RunOrExplain prints the plan of job for a grid of this machine's cores
// with explain; otherwise it runs job on an embedded grid, its result on
// standard output, until it ends or the program is interrupted. The
// program exits 1 with a message naming it on error.
func RunOrExplain(name string, job *sdk.JobBuilder, explain bool) {
	if explain {
		plan, err := job.Explain(runtime.NumCPU())
		fmt.Print(plan)
		Exit(name, err)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	_, err := local.Run(ctx, job, os.Stdout)
	stop()
	Exit(name, err)
}

// Subcommands runs the subcommand that os.Args[1] names with the rest of
// the arguments, or calls usage (which exits) for none or an unknown one.
func Subcommands(name string, usage func(), cmds map[string]func(args []string) error) {
	if len(os.Args) < 2 || cmds[os.Args[1]] == nil {
		usage()
		return
	}
	Exit(name, cmds[os.Args[1]](os.Args[2:]))
}

// Exit ends the program with status 1 and "name: err" when err is not nil.
func Exit(name string, err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

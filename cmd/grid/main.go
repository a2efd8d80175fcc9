// Command grid is wasmgrid's one binary: it runs jobs on an embedded grid
// (grid run) and, as the project grows, starts coordinators and agents and
// talks to running grids.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/wasmgrid/wasmgrid/internal/executor"
)

func main() {
	// An agent starts its executors from this same program.
	executor.MainIfExecutor()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

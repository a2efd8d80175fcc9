// Command grid is wasmgrid's one binary: it runs jobs on an embedded grid
// (grid run) and, as the project grows, starts coordinators and agents and
// talks to running grids.
package main

import (
	"context"
	"os"

	"github.com/wasmgrid/wasmgrid/internal/executor"
)

func main() {
	// An agent starts its executors from this same program.
	executor.MainIfExecutor()
	// The first SIGINT or SIGTERM stops the command (grid run cancels its
	// job and exits 130 or 143); a second one exits at once.
	ctx, stop := signalContext(context.Background(), os.Stderr)
	code := execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

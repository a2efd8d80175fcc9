package local

import (
	"context"
	"io"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/grid"
	"github.com/wasmgrid/wasmgrid/internal/executor"
	"github.com/wasmgrid/wasmgrid/sdk"
)

// MainIfExecutor must be the first call in the main function of a program
// that starts an embedded grid (Start, Run): the grid runs tasks in
// executor processes started from the program's own binary, and in those
// MainIfExecutor runs the executor and never returns.
func MainIfExecutor() { executor.MainIfExecutor() }

// Config configures an embedded grid; its zero value is one agent with a
// task slot per CPU.
type Config = grid.Config

// Grid is an embedded grid running in this process.
type Grid struct {
	g      *grid.Grid
	cancel context.CancelFunc
	done   chan struct{}
}

// Start starts an embedded grid. Close stops it.
func Start(cfg Config) (*Grid, error) {
	g, err := grid.New(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Grid{g: g, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		g.Run(ctx)
	}()
	return l, nil
}

// Slots is the number of tasks the grid runs at once.
func (l *Grid) Slots() int { return l.g.Slots() }

// Submit starts a job.
func (l *Grid) Submit(ctx context.Context, job *sdk.Job) (*grid.Job, error) {
	return l.g.Submit(ctx, grid.JobRequest{Spec: job.Spec, Modules: job.Modules})
}

// Run submits a job, waits for it, and, for a job whose sink is standard
// output, copies its result to w. If ctx ends first, the job is canceled.
func (l *Grid) Run(ctx context.Context, job *sdk.Job, w io.Writer) (*api.Summary, error) {
	j, err := l.Submit(ctx, job)
	if err != nil {
		return nil, err
	}
	sum, err := j.Wait(ctx)
	if ctx.Err() != nil {
		// The caller gave up: so does the grid, which stops the job's
		// attempts.
		j.Cancel()
	}
	if err != nil {
		return sum, err
	}
	if sum.Stdout {
		return sum, CopyResult(j, w)
	}
	return sum, nil
}

// RunJob runs job as Run does: it makes the grid an sdk.Grid, for
// JobBuilder.Run and the actions Collect and Count.
func (l *Grid) RunJob(ctx context.Context, job *sdk.Job, w io.Writer) error {
	_, err := l.Run(ctx, job, w)
	return err
}

// CopyResult writes a finished stdout job's result parts to w in partition
// order and deletes them.
func CopyResult(j *grid.Job, w io.Writer) error {
	if err := j.WriteResult(context.Background(), w); err != nil {
		return err
	}
	return j.RemoveResult()
}

// Close stops the grid and waits for it: its running jobs end, their
// executors are stopped, and its temporary files are removed.
func (l *Grid) Close() error {
	l.cancel()
	<-l.done
	return nil
}

// Run builds a job and runs it on an embedded grid of this machine's
// cores, started for it and stopped after it, writing a standard-output
// result to w: the quickest way to run a job from a Go program (which
// must call MainIfExecutor first in main).
func Run(ctx context.Context, job *sdk.JobBuilder, w io.Writer) (*api.Summary, error) {
	built, err := job.Build(ctx)
	if err != nil {
		return nil, err
	}
	l, err := Start(Config{})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return l.Run(ctx, built, w)
}

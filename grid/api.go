package grid

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/wasmgrid/wasmgrid/api"
)

// Job is a submitted job.
type Job struct {
	run    *jobRun
	cancel func()
	result func(context.Context) (*printed, error)
	logs   func() []api.TaskLog
}

// ID is the job's identifier in this grid.
func (j *Job) ID() string { return j.run.id }

// Progress delivers the job's latest progress whenever it changes. Only
// the newest state is kept: a slow reader skips states, never blocks the
// grid.
func (j *Job) Progress() <-chan api.Progress { return j.run.progress }

// Done is closed when the job has ended.
func (j *Job) Done() <-chan struct{} { return j.run.done }

// Cancel asks the grid to stop the job.
func (j *Job) Cancel() { j.cancel() }

// Wait blocks until the job ends and returns its summary, with the reason
// it failed, if it did.
func (j *Job) Wait(ctx context.Context) (*api.Summary, error) {
	select {
	case <-j.run.done:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	if j.run.err != nil {
		return j.run.summary, fmt.Errorf("job %s (%s) failed: %w", j.run.id, j.run.name, j.run.err)
	}
	return j.run.summary, nil
}

// WriteResult writes a finished job's result on standard output to w, its
// parts in partition order; the caller then calls RemoveResult.
func (j *Job) WriteResult(ctx context.Context, w io.Writer) error {
	select {
	case <-j.run.done:
	default:
		return errors.New("grid: job has not finished")
	}
	if !j.run.stdout {
		return errors.New("grid: the job wrote its result to " + j.run.outURL + ", not to standard output")
	}
	r, err := j.result(ctx)
	if err != nil {
		return err
	}
	return r.copy(ctx, w)
}

// RemoveResult deletes a stdout job's result files once they are printed.
func (j *Job) RemoveResult() error {
	if !j.run.stdout {
		return nil
	}
	return os.RemoveAll(j.run.resultDir)
}

// Logs lists how the job's task attempts ended, the newest last (the
// newest MaxTaskLogs of them).
func (j *Job) Logs() []api.TaskLog { return j.logs() }

// Plan is the job's physical plan, as a tree of stages.
func (j *Job) Plan() string { return j.run.plan }

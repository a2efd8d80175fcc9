package grid

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/storage"
)

// Job is a submitted job.
type Job struct {
	run    *jobRun
	cancel func()
}

// ID is the job's identifier in this grid.
func (j *Job) ID() string { return j.run.id }

// Progress delivers the job's latest progress whenever it changes. Only
// the newest state is kept: a slow reader skips states, never blocks the
// grid.
func (j *Job) Progress() <-chan Progress { return j.run.progress }

// Done is closed when the job has ended.
func (j *Job) Done() <-chan struct{} { return j.run.done }

// Cancel asks the grid to stop the job.
func (j *Job) Cancel() { j.cancel() }

// Wait blocks until the job ends and returns its summary, with the reason
// it failed, if it did.
func (j *Job) Wait(ctx context.Context) (*Summary, error) {
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

// ResultParts lists the part files of a finished job's result, in
// partition order. For a stdout sink the caller reads them and then calls
// RemoveResult.
func (j *Job) ResultParts() ([]string, error) {
	select {
	case <-j.run.done:
	default:
		return nil, errors.New("grid: job has not finished")
	}
	if !j.run.stdout {
		return nil, errors.New("grid: the job wrote its result to " + j.run.outURL + ", not to standard output")
	}
	var parts []string
	for p := range j.run.summary.Partitions {
		path := filepath.Join(j.run.resultDir, storage.PartName(p))
		if _, err := os.Stat(path); err != nil {
			return nil, err
		}
		parts = append(parts, path)
	}
	return parts, nil
}

// RemoveResult deletes a stdout job's result files once they are printed.
func (j *Job) RemoveResult() error {
	if !j.run.stdout {
		return nil
	}
	return os.RemoveAll(j.run.resultDir)
}

// Progress is a snapshot of a running job.
type Progress struct {
	Job                            string
	Stages                         []StageProgress
	RecordsIn, RecordsOut, BytesIn int64
	Elapsed                        time.Duration
}

// StageProgress is one stage's task counts.
type StageProgress struct {
	ID                   int
	Name                 string // the functions it runs, as "split" or "sum|format"
	Tasks, Running, Done int
}

// Summary describes a finished job.
type Summary struct {
	Job, Name                      string
	RecordsIn, RecordsOut, BytesIn int64
	Stages, Tasks                  int
	Attempts, FailedAttempts       int
	Partitions                     int   // of the result
	ExecutorPeakRSS                int64 // the largest peak resident memory of an executor that ran its tasks
	Duration                       time.Duration
	Output                         string // the result directory
	Stdout                         bool   // the result goes to standard output
	Plan                           string // the physical plan, as a tree
	// RoundTripP50 and RoundTripP99 are quantiles of the time from a
	// task attempt's launch to its report reaching the coordinator.
	RoundTripP50, RoundTripP99 time.Duration
}

// Plan is the job's physical plan, as a tree of stages.
func (j *Job) Plan() string { return j.run.plan }

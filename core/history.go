package core

import (
	"slices"
	"time"

	"github.com/wasmgrid/wasmgrid/planner"
)

// Job states in a Record.
const (
	Succeeded = "succeeded"
	Failed    = "failed"
	Canceled  = "canceled"
)

// Record is what is kept of a finished job.
type Record struct {
	ID        string          `json:"id"`
	Tenant    string          `json:"tenant"`
	Name      string          `json:"name"`
	State     string          `json:"state"` // succeeded, failed, canceled
	Err       string          `json:"error,omitempty"`
	Submitted time.Time       `json:"submitted"`
	Ended     time.Time       `json:"ended"`
	Output    string          `json:"output,omitempty"`
	Payload   []byte          `json:"payload,omitempty"`
	Stages    []StageProgress `json:"stages"`
	Counters
	Tasks        int           `json:"tasks"`
	Partitions   int           `json:"partitions"`
	Plan         string        `json:"plan"`
	RoundTripP50 time.Duration `json:"round_trip_p50_ns"`
	RoundTripP99 time.Duration `json:"round_trip_p99_ns"`
	StartP50     time.Duration `json:"start_p50_ns,omitempty"`
	StartP99     time.Duration `json:"start_p99_ns,omitempty"`
	Logs         []TaskLog     `json:"logs,omitempty"` // the newest History.MaxTaskLogs
	// Inline holds the result partitions whose parts their tasks returned
	// inline (Status.Inline): they have no file in the output.
	Inline map[int][]byte `json:"inline,omitempty"`
}

// Duration is how long the job took, from submission to its end.
func (r *Record) Duration() time.Duration { return r.Ended.Sub(r.Submitted) }

// StageProgress counts a stage's tasks by state.
type StageProgress struct {
	ID      int    `json:"id"`
	Name    string `json:"name"`
	Tasks   int    `json:"tasks"`
	Running int    `json:"running"`
	Done    int    `json:"done"`
}

func (c *Core) newRecord(j *Job, output string) *Record {
	r := &Record{
		ID: j.ID, Tenant: j.Tenant, Name: j.Name, State: Succeeded, Err: j.Err,
		Submitted: j.Submitted, Ended: c.st.Now, Output: output, Payload: j.Payload,
		Stages: stages(j), Counters: j.Counters, Plan: j.plan.String(),
		Partitions: j.plan.Result().Partitions,
	}
	switch {
	case j.Canceled:
		r.State = Canceled
	case j.Err != "":
		r.State = Failed
	}
	for _, s := range j.plan.Stages {
		r.Tasks += s.Partitions
	}
	rts := slices.Clone(j.RoundTrips)
	slices.Sort(rts)
	r.RoundTripP50, r.RoundTripP99 = percentile(rts, 0.50), percentile(rts, 0.99)
	sds := slices.Clone(j.StartDelays)
	slices.Sort(sds)
	r.StartP50, r.StartP99 = percentile(sds, 0.50), percentile(sds, 0.99)
	logs := j.Logs
	if n := c.cfg.History.MaxTaskLogs; len(logs) > n {
		logs = logs[len(logs)-n:]
	}
	r.Logs = slices.Clone(logs)
	if r.State == Succeeded {
		r.Inline = j.Inline
	}
	return r
}

// percentile is the q-quantile of sorted ds, or 0.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

// stages is a job's progress by stage.
func stages(j *Job) []StageProgress {
	var out []StageProgress
	for _, sp := range j.sched.Progress() {
		out = append(out, StageProgress{ID: sp.Stage, Name: StageName(j.plan.Stages[sp.Stage]), Tasks: sp.Tasks, Running: sp.Running, Done: sp.Done})
	}
	return out
}

// prune drops the records of finished jobs past the history's bounds.
func (c *Core) prune() {
	h := c.cfg.History
	drop := max(0, len(c.st.History)-h.MaxJobs)
	for drop < len(c.st.History) && c.st.Now.Sub(c.st.History[drop].Ended) > h.MaxAge {
		drop++
	}
	if drop > 0 {
		c.st.History = slices.Delete(c.st.History, 0, drop)
	}
}

// StageName names a stage by its functions, for progress bars and logs.
func StageName(s *planner.Stage) string {
	var parts []string
	if s.Reduce != nil {
		parts = append(parts, s.Reduce.Function)
	}
	for _, st := range s.Steps {
		switch {
		case st.Func != (planner.FuncRef{}):
			parts = append(parts, st.Func.Function)
		case st.Op == planner.OpSample:
			parts = append(parts, "sample")
		default:
			parts = append(parts, "join") // a hash join: a broadcast, or a cache in place
		}
	}
	if len(parts) == 0 {
		return "read"
	}
	out := parts[0]
	for _, p := range parts[1:] {
		out += "|" + p
	}
	return out
}

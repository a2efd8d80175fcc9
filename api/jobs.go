package api

import "time"

// SubmitRequest is the body of POST /v1/jobs.
type SubmitRequest struct {
	// Spec is the job spec's TOML text; File is its path on the client,
	// against which relative input paths resolve (inputs are read by the
	// agents, so they must be visible to them).
	Spec   string            `json:"spec"`
	File   string            `json:"file"`
	Params map[string]string `json:"params,omitempty"`
	Conf   map[string]string `json:"conf,omitempty"`
	// Modules maps the spec's module names to hashes uploaded with
	// PUT /v1/modules.
	Modules map[string]string `json:"modules"`
	// Tenant is the tenant an admin submits for (default "default").
	Tenant string `json:"tenant,omitempty"`
}

// SubmitResponse is the answer to POST /v1/jobs.
type SubmitResponse struct {
	ID string `json:"id"`
}

// CancelResponse is the answer to POST /v1/jobs/{id}/cancel: the job is
// being canceled (State "canceling").
type CancelResponse struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

// Job states.
const (
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCanceled  = "canceled"
	// StateCommitting: the job's tasks are done and its output is being
	// committed (or, for a failed job, cleaned up).
	StateCommitting = "committing"
)

// JobInfo is a job as GET /v1/jobs and GET /v1/jobs/{id} show it, and the
// data of each event of GET /v1/jobs/{id}/events.
type JobInfo struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Tenant    string      `json:"tenant"`
	State     string      `json:"state"` // StateRunning, StateCommitting, StateSucceeded, StateFailed, StateCanceled
	Error     string      `json:"error,omitempty"`
	Submitted time.Time   `json:"submitted"`
	Stages    []StageInfo `json:"stages,omitempty"` // of a running job, in GET /v1/jobs/{id} and events
	Summary   *Summary    `json:"summary,omitempty"`
}

// JobList is the answer to GET /v1/jobs.
type JobList struct {
	Jobs []JobInfo `json:"jobs"`
}

// StageInfo is one stage of a running job: its task counts, and why its
// pending tasks wait.
type StageInfo struct {
	ID      int    `json:"id"`
	Name    string `json:"name"` // the functions it runs, as "split" or "sum|format"
	Tasks   int    `json:"tasks"`
	Running int    `json:"running"`
	Done    int    `json:"done"`
	Pending int    `json:"pending"`
	// Reason says why the pending tasks are not running; nil when none
	// is pending.
	Reason *Reason `json:"reason,omitempty"`
}

// Reason says why something waits: a stable Code for programs, and a
// Message for people, which names the numbers and what would help.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// The codes of a Reason. A client that meets a code it does not know
// shows the message.
const (
	// ReasonParentStage: a stage the pending one reads is not done.
	ReasonParentStage = "parent_stage"
	// ReasonNoAgentFits: no agent has the resources of one task (its
	// task.memory, say), so the task cannot run until a larger one joins.
	ReasonNoAgentFits = "no_agent_fits"
	// ReasonQuota: the tenant holds its quota's maximum.
	ReasonQuota = "quota"
	// ReasonFairShare: the resources are held by others, and the tenant
	// waits for its turn in Dominant Resource Fairness order.
	ReasonFairShare = "fair_share"
	// ReasonNoAgents: the grid has no agent at all.
	ReasonNoAgents = "no_agents"
	// ReasonFiltered: the job's scheduler declined the free resources
	// recently (a decline filter), and is not offered them again yet.
	ReasonFiltered = "filtered"
	// ReasonEnding: the job failed or was canceled and is ending; its
	// pending tasks will not run.
	ReasonEnding = "ending"
)

// Summary describes a finished job.
type Summary struct {
	Job            string `json:"job"` // its ID
	Name           string `json:"name"`
	RecordsIn      int64  `json:"records_in"`
	RecordsOut     int64  `json:"records_out"`
	BytesIn        int64  `json:"bytes_in"`
	Stages         int    `json:"stages"`
	Tasks          int    `json:"tasks"`
	Attempts       int    `json:"attempts"`
	FailedAttempts int    `json:"failed_attempts"`
	Partitions     int    `json:"partitions"` // of the result
	// ExecutorPeakRSS is the largest peak resident memory, in bytes, of
	// an executor that ran the job's tasks.
	ExecutorPeakRSS int64         `json:"executor_peak_rss_bytes"`
	Duration        time.Duration `json:"duration_ns"`
	Output          string        `json:"output"` // the result's directory or URL
	Stdout          bool          `json:"stdout"` // the result goes to standard output (GET /v1/jobs/{id}/result)
	Plan            string        `json:"plan"`   // the physical plan, as a tree
	// RoundTripP50 and RoundTripP99 are quantiles of the time from a
	// task attempt's launch to its report reaching the coordinator.
	RoundTripP50 time.Duration `json:"round_trip_p50_ns"`
	RoundTripP99 time.Duration `json:"round_trip_p99_ns"`
	// StartP50 and StartP99 are quantiles of the time from a task
	// attempt's launch to its guest code's start (the agent's clock
	// against the coordinator's: exact on one machine, as good as the
	// hosts' clock sync across several).
	StartP50 time.Duration `json:"start_p50_ns,omitempty"`
	StartP99 time.Duration `json:"start_p99_ns,omitempty"`
}

// Progress is a snapshot of a running job, as an embedded grid delivers
// it.
type Progress struct {
	Job        string          `json:"job"`
	Stages     []StageProgress `json:"stages"`
	RecordsIn  int64           `json:"records_in"`
	RecordsOut int64           `json:"records_out"`
	BytesIn    int64           `json:"bytes_in"`
	Elapsed    time.Duration   `json:"elapsed_ns"`
}

// StageProgress is one stage's task counts.
type StageProgress struct {
	ID      int    `json:"id"`
	Name    string `json:"name"` // the functions it runs, as "split" or "sum|format"
	Tasks   int    `json:"tasks"`
	Running int    `json:"running"`
	Done    int    `json:"done"`
}

// TaskLog is how one task attempt ended.
type TaskLog struct {
	Time    time.Time     `json:"time"`
	Task    string        `json:"task"` // stage.partition
	Attempt int           `json:"attempt"`
	Agent   string        `json:"agent"`
	Outcome string        `json:"outcome"` // succeeded, failed, lost, fetch_failed, fatal, stale
	Elapsed time.Duration `json:"elapsed_ns"`
	Error   string        `json:"error,omitempty"`
	Log     string        `json:"log,omitempty"` // the guest's output, a tail
	// Launched is when the coordinator launched the attempt; Started when
	// its guest code began, on the agent's clock (zero if not reported).
	Launched time.Time `json:"launched,omitzero"`
	Started  time.Time `json:"started,omitzero"`
}

// LogList is the answer to GET /v1/jobs/{id}/logs.
type LogList struct {
	Logs []TaskLog `json:"logs"`
}

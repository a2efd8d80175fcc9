package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wasmgrid/wasmgrid/allocator"
	"github.com/wasmgrid/wasmgrid/planner"
)

// Command is one input of the state machine: exactly one of its pointer
// fields is set. Time is the proposer's clock when it made the command;
// the core's clock never goes back, so a proposer whose clock is behind
// only delays timers.
type Command struct {
	Time time.Time `json:"time"`

	Submit    *Submit    `json:"submit,omitempty"`
	AgentUp   *AgentUp   `json:"agent_up,omitempty"`
	Suspect   *AgentName `json:"suspect,omitempty"`
	AgentLost *AgentName `json:"agent_lost,omitempty"`
	Status    *Status    `json:"status,omitempty"`
	// Statuses are many attempts' reports at once, applied in order and
	// followed by one offer cycle: an agent's reports that arrived
	// together cost the log one entry.
	Statuses  []Status   `json:"statuses,omitempty"`
	Cancel    *Cancel    `json:"cancel,omitempty"`
	Committed *Committed `json:"committed,omitempty"`
	// Tick only advances the clock: decline filters that lapse let their
	// agents be offered again.
	Tick *struct{} `json:"tick,omitempty"`
}

// Submit adds a job. Its ID is given when the command is applied, so that
// no two jobs ever share one.
type Submit struct {
	// Request is the proposer's name for the submission, echoed by the
	// Accepted or Refused decision.
	Request string `json:"request"`
	Tenant  string `json:"tenant"`
	Name    string `json:"name"`
	// Job is the logical DAG with its splits, as the proposer lowered it
	// from the spec: the core builds the same plan from it everywhere.
	Job         planner.Job         `json:"job"`
	MaxAttempts int                 `json:"max_attempts,omitempty"`
	Task        allocator.Resources `json:"task"` // what each task attempt holds
	// Payload is the shell's own record of the job (modules, volumes,
	// output, the job's block token), kept and snapshotted as it is.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// AgentUp registers an agent, or registers it again after a restart of it
// or of the coordinator: Running lists the attempts it still runs, which
// the core adopts when it launched them there and kills otherwise
// (Mesos' reconciliation); attempts the core placed on the agent that it
// does not list are lost.
type AgentUp struct {
	Name      string              `json:"name"`
	Resources allocator.Resources `json:"resources"`
	BlockAddr string              `json:"block_addr"`
	Running   []Attempt           `json:"running,omitempty"`
}

// AgentName names an agent that is suspect (no more offers) or lost.
type AgentName struct {
	Name string `json:"name"`
}

// Attempt names one attempt of one task of a job.
type Attempt struct {
	Job     string          `json:"job"`
	Task    planner.TaskKey `json:"task"`
	Attempt int             `json:"attempt"`
}

// Status is how an attempt ended, as its agent reports it.
type Status struct {
	Job     string          `json:"job"`
	Task    planner.TaskKey `json:"task"`
	Attempt int             `json:"attempt"`
	Agent   string          `json:"agent"`
	// Failure is nil for an attempt that succeeded.
	Failure *planner.Failure `json:"failure,omitempty"`
	Err     string           `json:"err,omitempty"`
	Log     string           `json:"log,omitempty"` // the tail of the guest's output
	Elapsed time.Duration    `json:"elapsed_ns"`
	// Started is when the attempt's guest code began, on the agent's
	// clock (zero: not reported).
	Started time.Time `json:"started,omitzero"`

	RecordsIn  int64    `json:"records_in,omitempty"`
	RecordsOut int64    `json:"records_out,omitempty"`
	BytesIn    int64    `json:"bytes_in,omitempty"`
	PeakRSS    int64    `json:"peak_rss,omitempty"`
	Samples    [][]byte `json:"samples,omitempty"` // the keys a sample task drew
	// Inline says that a result task's part is Output, which the core
	// keeps, rather than an attempt file.
	Inline bool   `json:"inline,omitempty"`
	Output []byte `json:"output,omitempty"`
}

// Cancel ends a job: its attempts are killed and it ends as canceled.
type Cancel struct {
	Job    string `json:"job"`
	Reason string `json:"reason,omitempty"`
}

// Committed says that the shell committed (or, for a failed job, cleaned
// up) a job's output: the job ends. Err is a commit that failed.
type Committed struct {
	Job string `json:"job"`
	Err string `json:"err,omitempty"`
	// Output is where the result went, as the user names it.
	Output string `json:"output,omitempty"`
	// RecordsOut, if set, is the result's record count after the commit
	// cut it (sink.take).
	RecordsOut *int64 `json:"records_out,omitempty"`
}

// maxCommand bounds an encoded command: a job's inline values travel in
// its Submit, and the spec limits keep those far below this.
const maxCommand = 64 << 20

// Encode returns cmd as bytes for the replicated log.
func (cmd Command) Encode() ([]byte, error) {
	if err := cmd.check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("core: encode command: %w", err)
	}
	if len(b) > maxCommand {
		return nil, fmt.Errorf("core: a command of %d bytes is over the %d-byte limit", len(b), maxCommand)
	}
	return b, nil
}

// DecodeCommand reads a command that Encode wrote.
func DecodeCommand(b []byte) (Command, error) {
	if len(b) > maxCommand {
		return Command{}, fmt.Errorf("core: a command of %d bytes is over the %d-byte limit", len(b), maxCommand)
	}
	var cmd Command
	if err := json.Unmarshal(b, &cmd); err != nil {
		return Command{}, fmt.Errorf("core: malformed command: %w", err)
	}
	if err := cmd.check(); err != nil {
		return Command{}, err
	}
	return cmd, nil
}

// check reports a command that does not set exactly one kind.
func (cmd Command) check() error {
	n := 0
	for _, set := range []bool{cmd.Submit != nil, cmd.AgentUp != nil, cmd.Suspect != nil, cmd.AgentLost != nil, cmd.Status != nil, len(cmd.Statuses) > 0, cmd.Cancel != nil, cmd.Committed != nil, cmd.Tick != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("core: a command must set exactly one kind")
	}
	return nil
}

// Kind names the command's kind, for logs and metrics.
func (cmd Command) Kind() string {
	switch {
	case cmd.Submit != nil:
		return "submit"
	case cmd.AgentUp != nil:
		return "agent_up"
	case cmd.Suspect != nil:
		return "suspect"
	case cmd.AgentLost != nil:
		return "agent_lost"
	case cmd.Status != nil:
		return "status"
	case len(cmd.Statuses) > 0:
		return "statuses"
	case cmd.Cancel != nil:
		return "cancel"
	case cmd.Committed != nil:
		return "committed"
	case cmd.Tick != nil:
		return "tick"
	}
	return "none"
}

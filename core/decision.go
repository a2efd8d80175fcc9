package core

import (
	"time"

	"github.com/wasmgrid/wasmgrid/planner"
)

// Decision is what the core asks its shell to do. Only the leader of a
// replicated coordinator carries decisions out; every server computes
// them.
type Decision interface{ decision() }

// Accepted: the submission Request is job Job.
type Accepted struct{ Request, Job string }

// Refused: the submission Request cannot run (its plan does not build).
type Refused struct{ Request, Err string }

// Launch starts a task attempt on an agent.
type Launch struct {
	Job, Tenant, Agent string
	Spec               planner.TaskSpec
	// BlockServers are the block server addresses of the agents whose
	// map outputs the task reads.
	BlockServers map[string]string
}

// Kill stops attempts that an agent runs and the core no longer wants.
type Kill struct {
	Agent    string
	Attempts []Attempt
}

// RemoveJob stops a job's attempts on the agents and deletes its shuffle
// files there.
type RemoveJob struct {
	Job    string
	Agents []string
}

// PeerLost tells every agent that one is lost: fetches from its block
// server stop at once.
type PeerLost struct{ Agent, BlockAddr string }

// Commit asks the shell to commit a job's output (Err empty) or clean it
// up (Err set), then to apply Committed. Parts holds the winning attempt
// of each result partition; Inline marks those whose part the core holds
// (Record.Inline), which have no attempt file.
type Commit struct {
	Job    string
	Err    string
	Parts  []int
	Inline []bool
}

// Discard asks the shell to delete the output file of a result attempt
// that lost the race to another attempt of its partition.
type Discard struct {
	Job                string
	Partition, Attempt int
}

// Ended: the job's record is final (Job's state is in History).
type Ended struct{ Job string }

// Changed: a job's progress moved.
type Changed struct{ Job string }

// AttemptEnded reports how an attempt ended, for the shell's metrics and
// logs: Outcome is a TaskLog outcome; Result says whether its stage is the
// result stage; RoundTrip is the time from its launch to its report.
type AttemptEnded struct {
	Job, Agent, Outcome, Err string
	Task                     planner.TaskKey
	Attempt                  int
	Result                   bool
	Elapsed, RoundTrip       time.Duration
	// The records and bytes the attempt added to its job's counters.
	RecordsIn, RecordsOut, BytesIn int64
}

// Wake asks the shell to apply a Tick at At: a decline filter lapses.
type Wake struct{ At time.Time }

func (Accepted) decision()     {}
func (Refused) decision()      {}
func (Launch) decision()       {}
func (Kill) decision()         {}
func (RemoveJob) decision()    {}
func (PeerLost) decision()     {}
func (Commit) decision()       {}
func (Discard) decision()      {}
func (Ended) decision()        {}
func (Changed) decision()      {}
func (Wake) decision()         {}
func (AttemptEnded) decision() {}

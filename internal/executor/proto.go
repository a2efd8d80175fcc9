package executor

import (
	"time"

	"github.com/wasmgrid/wasmgrid/planner"
	"github.com/wasmgrid/wasmgrid/wasmexec"
)

// The protocol between an agent and its executor processes. The agent
// writes requests to the executor's standard input and reads responses
// from its standard output, both as one encoding/gob stream per direction;
// the executor's standard error is its log. Requests and responses carry an
// ID, so tasks run concurrently and finish in any order. Both ends are the
// same binary, so the protocol has no versioning of its own: an agent always
// starts executors from its own executable.

// Request is one message from the agent. Exactly one field after ID is set.
type Request struct {
	ID       uint64
	Run      *TaskMsg     // run a task attempt
	Describe *DescribeMsg // load a module and read its manifest
	Cancel   bool         // stop the task ID; its response follows
	// PeerLost: an agent was declared lost; fetches from its block server
	// stop. No response follows.
	PeerLost *PeerLostMsg
}

// PeerLostMsg names an agent that the coordinator declared lost and the
// address of its block server. The attempts that the executor received
// before it stop fetching from that address at once: their fetches fail
// (shuffle.FetchError), so the scheduler reruns the lost map outputs.
type PeerLostMsg struct {
	Agent, BlockAddr string
}

// TaskMsg is a task attempt as the executor receives it: the Task, with
// modules named by the files that hold them instead of loaded values.
type TaskMsg struct {
	Spec    planner.TaskSpec
	Modules []ModuleFile
	Settings
	// Job and Token name the job and prove the task may read its blocks.
	Job, Token string
	// BlockServers maps each agent to the address of its block server.
	BlockServers map[string]string
	// Timeout is the attempt's task.timeout, counted from when the
	// executor receives it; 0 means none. The agent enforces it; the
	// executor does too, so that it holds when the agent cannot: at the
	// deadline it stops the attempt between two batches, and if the guest
	// has not returned DeadlineGrace later it exits (ExitDeadline).
	Timeout time.Duration
}

// DeadlineGrace is how long after an attempt's deadline an executor waits
// for the guest to return before it exits. It is longer than the agent's
// own grace, so that an agent that is alive acts first.
const DeadlineGrace = 2 * time.Second

// DeadlineSignalDelay is how long after DeadlineGrace the kernel sends an
// executor SIGTERM, for when a spinning guest keeps it from exiting by
// itself: an executor that dies of SIGTERM was ended by a deadline.
const DeadlineSignalDelay = 500 * time.Millisecond

// Exit statuses of an executor that ends itself.
const (
	// ExitDeadline: an attempt did not stop within DeadlineGrace of its
	// deadline.
	ExitDeadline = 3
	// ExitOrphaned: the agent that started it is gone.
	ExitOrphaned = 4
	// ExitStuck: its input closed (the agent stops it) and attempts still
	// ran InputGrace later.
	ExitStuck = 5
)

// InputGrace is how long an executor whose input has closed waits for its
// attempts to stop before it exits.
const InputGrace = 1500 * time.Millisecond

// ModuleFile names a module by its name in the job, its sha256 and the file
// where the agent keeps its bytes.
type ModuleFile struct {
	Name string
	Hash string
	Path string
}

// Response is the outcome of one request.
type Response struct {
	ID uint64
	// Compiled is a progress notice, not the response: the module of a
	// Describe has compiled and its initialization starts.
	Compiled bool
	Result   *Result
	Module   *ModuleInfo      // the answer to Describe
	Failure  *planner.Failure // set when the attempt failed
	Err      string           // the failure, in words
	Log      string           // the tail of the guest's stdout and stderr
}

// DescribeMsg asks for a module's manifest.
type DescribeMsg struct {
	Module ModuleFile
	// MemoryBytes is the memory the module may use to initialize: the
	// memory limit of the tasks that will run it.
	MemoryBytes uint64
}

// ModuleInfo is what a module declares.
type ModuleInfo struct {
	Functions   []wasmexec.Function
	MemoryPages uint32 // initial size of its memory
}

// Config is an executor process's configuration, passed by its agent in
// the environment variable named by EnvConfig, as JSON.
type Config struct {
	// CacheDir keeps compiled modules across executor restarts.
	CacheDir string
	// MemoryLimit is the executor's Go runtime memory limit, in bytes; 0
	// leaves it unset.
	MemoryLimit int64
	// Limits bound what modules may declare.
	Limits wasmexec.ModuleLimits
	// LoadTimeout bounds reading a manifest (wasmexec.Config.LoadTimeout).
	LoadTimeout time.Duration
	// ShuffleCA is the PEM certificate authority that the agents' block
	// servers' certificates come from.
	ShuffleCA []byte
	// ShuffleCert and ShuffleKey, if set, are the agent's node certificate
	// (PEM), presented to block servers that require client certificates
	// (a cluster's).
	ShuffleCert, ShuffleKey []byte
	// Tenant is the tenant whose attempts the executor runs, for its log
	// and for operators (it is in the process's environment).
	Tenant string
	// Parent is the process ID of the agent that starts the executor; the
	// executor exits when its parent is another (0: its parent when it
	// starts).
	Parent int
	// Interruptible compiles guests with termination checks: slower
	// guests, but a deadline stops a loop without killing the process. For
	// executors that only read manifests.
	Interruptible bool
}

// EnvConfig is the environment variable that makes a process an executor.
const EnvConfig = "WASMGRID_EXECUTOR"

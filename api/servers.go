package api

// LeaderHeader names the leader's API URL in a follower's 421 answer;
// ElectionHeader marks a 503 answered while no server leads (an
// election), which a client waits out.
const (
	LeaderHeader   = "Wasmgrid-Leader"
	ElectionHeader = "Wasmgrid-Election"
)

// ServerInfo is one coordinator server as GET /v1/server describes it:
// any server answers, leader or follower.
type ServerInfo struct {
	ID      uint64 `json:"id"`
	Name    string `json:"name"`
	APIAddr string `json:"api_addr"` // its API's URL
	Leader  bool   `json:"leader"`
	PID     int    `json:"pid"`
	// Term, CommitIndex, AppliedIndex and SnapshotIndex are its
	// replicated log's: the log index is AppliedIndex.
	Term          uint64 `json:"term"`
	CommitIndex   uint64 `json:"commit_index"`
	AppliedIndex  uint64 `json:"log_index"`
	SnapshotIndex uint64 `json:"snapshot_index"`
	// LeaderName and LeaderAPI name the leader it knows (empty during an
	// election).
	LeaderName string `json:"leader_name,omitempty"`
	LeaderAPI  string `json:"leader_api,omitempty"`
	// Members are the servers of the log; Unreachable those the leader
	// has not heard from lately.
	Members     []string `json:"members"`
	Unreachable []string `json:"unreachable,omitempty"`
	// Error says why the server did not answer (set by clients that list
	// servers, never by a server).
	Error string `json:"error,omitempty"`
}

package api

// LeaderHeader names the leader's API URL in a follower's 421 answer;
// ElectionHeader marks a 503 answered while no server leads (an
// election), which a client waits out.
// QuorumHeader marks a 503 of a server that hears from fewer servers than
// a quorum: a client asks the other servers before it reports it.
const (
	LeaderHeader   = "Wasmgrid-Leader"
	ElectionHeader = "Wasmgrid-Election"
	QuorumHeader   = "Wasmgrid-Quorum"
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

// AddServerRequest is the body of POST /v1/servers: the coordinator
// server to add to the replicated log. ID is new for all time (ids are
// never reused); Name is its certificate's common name.
type AddServerRequest struct {
	ID         uint64 `json:"id"`
	Name       string `json:"name"`
	RaftAddr   string `json:"raft_addr"`
	APIAddr    string `json:"api_addr,omitempty"`
	GossipAddr string `json:"gossip_addr,omitempty"`
}

// Member is one server of the replicated log.
type Member struct {
	ID       uint64 `json:"id"`
	Name     string `json:"name"`
	RaftAddr string `json:"raft_addr"`
}

// MembersResponse answers POST /v1/servers and DELETE /v1/servers/NAME:
// the members once the change is committed.
type MembersResponse struct {
	Members []Member `json:"members"`
}

// Headers of GET /v1/backup: the server whose raft.db it is, and the log
// index it had applied when the copy began.
const (
	BackupServerHeader = "Wasmgrid-Server"
	BackupIndexHeader  = "Wasmgrid-Log-Index"
)

package api

import "time"

// AgentInfo is an agent as GET /v1/agents lists it.
type AgentInfo struct {
	ID        string    `json:"id"`
	Addr      string    `json:"addr"`   // its block server
	Status    string    `json:"status"` // alive, suspect (gone, within its grace period), lost
	CPUMillis int64     `json:"cpu_millis"`
	MemMiB    int64     `json:"mem_mib"`
	FreeCPU   int64     `json:"free_cpu_millis"`
	FreeMem   int64     `json:"free_mem_mib"`
	Joined    time.Time `json:"joined"`
}

// AgentList is the answer to GET /v1/agents.
type AgentList struct {
	Agents []AgentInfo `json:"agents"`
}

// TenantInfo is a tenant's share of the cluster (GET /v1/tenants).
type TenantInfo struct {
	Name          string  `json:"name"`
	Weight        float64 `json:"weight"`
	CPUMillis     int64   `json:"cpu_millis"` // held now, offers included
	MemMiB        int64   `json:"mem_mib"`
	DominantShare float64 `json:"dominant_share"`
	TaskSeconds   float64 `json:"task_seconds"` // slot time its attempts have held
	Jobs          int     `json:"jobs"`         // running
}

// TenantList is the answer to GET /v1/tenants.
type TenantList struct {
	Tenants []TenantInfo `json:"tenants"`
}

// ClusterEvent is something that happened to the cluster: the data of an
// event of GET /v1/events, whose event name is its Kind.
type ClusterEvent struct {
	Seq     int64     `json:"seq"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"` // agent_joined, agent_lost, job_submitted, job_canceled, ...
	Subject string    `json:"subject"`
	Detail  string    `json:"detail,omitempty"`
}

// ModuleInfo is an uploaded module: the answer to PUT /v1/modules.
type ModuleInfo struct {
	Hash string `json:"hash"` // sha256, hex
	Size int64  `json:"size"`
}

// ModuleList is the answer to GET /v1/modules.
type ModuleList struct {
	Modules []ModuleInfo `json:"modules"`
}

// DeleteModuleResponse is the answer to DELETE /v1/modules/{hash}.
type DeleteModuleResponse struct {
	Hash  string `json:"hash"`
	State string `json:"state"` // "deleted"
}

// ErrorBody is the body of every error answer (4xx, 5xx).
type ErrorBody struct {
	// Error names the problem and, for a limit, the setting.
	Error string `json:"error"`
}

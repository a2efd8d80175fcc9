package grid

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/wasmgrid/wasmgrid/allocator"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/internal/tokens"
)

// TLSFiles names a node's PEM files: the cluster's authority, and the
// node's certificate and key, whose common name is the node's name.
type TLSFiles struct {
	CA   string `toml:"ca"`
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

// ResourceSpec is an amount of resources in a config file.
type ResourceSpec struct {
	CPUs float64      `toml:"cpus"`
	Mem  jobspec.Size `toml:"mem"`
	Disk jobspec.Size `toml:"disk"`
}

func (r ResourceSpec) resources() allocator.Resources {
	return allocator.Resources{CPU: int64(r.CPUs * 1000), Mem: int64(r.Mem) >> 20, Disk: int64(r.Disk) >> 20}
}

// TenantConfig is a tenant of the cluster.
type TenantConfig struct {
	Name string `toml:"name"`
	// TokenSHA256 is the hex sha256 of the tenant's bearer token: the
	// coordinator never stores the token itself (grid init prints one).
	TokenSHA256 string       `toml:"token_sha256"`
	Weight      float64      `toml:"weight"`
	Guarantee   ResourceSpec `toml:"guarantee"`
	Limit       ResourceSpec `toml:"limit"`
	// Grants are the volumes the tenant's jobs may read ("read") or read
	// and write ("read-write"), by name: grants = { data = "read-write" }.
	// A tenant granted nothing can only read inline and generated
	// sources and print its results.
	Grants map[string]string `toml:"grants"`
}

// CoordinatorConfig configures `grid coordinator`. Zero fields take the
// defaults that `grid config example` prints.
type CoordinatorConfig struct {
	Name        string `toml:"name"`
	StateDir    string `toml:"state_dir"`
	APIAddr     string `toml:"api_addr"`
	ControlAddr string `toml:"control_addr"`
	GossipAddr  string `toml:"gossip_addr"`
	// GossipKey is a file holding the serf keyring's key (base64).
	GossipKey string   `toml:"gossip_key"`
	TLS       TLSFiles `toml:"tls"`
	// AdminTokenSHA256 is the hex sha256 of the admin token, which sees
	// and cancels everything.
	AdminTokenSHA256 string `toml:"admin_token_sha256"`
	// AgentGrace is how long an agent that left gossip or lost its
	// control connection has to come back before it is declared lost.
	AgentGrace jobspec.Duration `toml:"agent_grace"`
	CacheDir   string           `toml:"cache_dir"`
	// InsecureHTTP serves the API as plain HTTP instead of HTTPS with the
	// node certificate: bearer tokens then cross the network in clear,
	// so it is refused unless api_addr is a loopback address.
	InsecureHTTP bool `toml:"insecure_http"`
	// Limits bound what tenants, tokens and client addresses can make the
	// coordinator hold; zero fields take the defaults.
	Limits LimitsConfig `toml:"limits,omitempty"`
	// Audit says where the audit log of the API's changes and refusals
	// goes, and how long it is kept.
	Audit AuditConfig `toml:"audit,omitempty"`
	// Volumes are the places jobs may read and write, each granted to
	// tenants by name (TenantConfig.Grants).
	Volumes []storage.Volume `toml:"volumes"`
	Tenants []TenantConfig   `toml:"tenants"`
	// RaftAddr is where this server's replicated log listens (UDP, QUIC
	// with the node certificate); default: the control address's host,
	// any port, for a coordinator that is its cluster's only server.
	RaftAddr string `toml:"raft_addr"`
	// ServerID is this server's id among Servers (default 1).
	ServerID uint64 `toml:"server_id"`
	// Servers are the coordinator servers that share the replicated job
	// state (1, 3 or 5); empty means this server alone.
	Servers []ServerConfig `toml:"servers"`
	// JoinCluster starts a server that `grid servers add` has just added
	// to a running cluster: an empty state dir takes the state from the
	// leader instead of starting a new cluster. Servers then lists the
	// current members, this one included. Once the state dir holds state
	// it changes nothing.
	JoinCluster bool `toml:"join_cluster,omitempty"`
	// History bounds what is kept of finished jobs.
	History HistoryConfig `toml:"history"`
	// ResultsVolume names the volume (of Volumes) where the results of
	// jobs that print them (a stdout sink) are kept until they are read;
	// no tenant may be granted it. Default: STATE_DIR/results, which only
	// this server reads: with several servers, name a volume they all
	// reach (a shared directory, an S3 bucket), or a result written under
	// one leader is gone under the next.
	ResultsVolume string `toml:"results_volume,omitempty"`
}

// ServerConfig is one coordinator server of the cluster.
type ServerConfig struct {
	ID   uint64 `toml:"id"`
	Name string `toml:"name"` // its certificate's common name
	// RaftAddr is where its replicated log listens; APIAddr where its
	// API does (clients and followers' answers use it); GossipAddr where
	// its serf agent does (servers join each other's).
	RaftAddr   string `toml:"raft_addr"`
	APIAddr    string `toml:"api_addr"`
	GossipAddr string `toml:"gossip_addr"`
}

// HistoryConfig bounds the finished jobs the coordinator keeps
// (docs/core.md): at most MaxJobs, none older than MaxAge.
type HistoryConfig struct {
	MaxJobs int              `toml:"max_jobs"` // default 1000
	MaxAge  jobspec.Duration `toml:"max_age"`  // default 168h
}

// AgentConfig configures `grid agent`.
type AgentConfig struct {
	// Name must be the common name of the agent's certificate.
	Name       string   `toml:"name"`
	StateDir   string   `toml:"state_dir"`
	Join       []string `toml:"join"`
	GossipAddr string   `toml:"gossip_addr"`
	GossipKey  string   `toml:"gossip_key"`
	BlockAddr  string   `toml:"block_addr"`
	TLS        TLSFiles `toml:"tls"`
	CPUs       float64  `toml:"cpus"`
	// Memory and Disk are what the agent offers; zero means the machine's
	// memory divided by 2, and the free disk under the state directory.
	Memory   jobspec.Size `toml:"memory"`
	Disk     jobspec.Size `toml:"disk"`
	CacheDir string       `toml:"cache_dir"`
	// ExecutorOverhead is the resident memory each tenant's executor may
	// use beyond the task.memory of its running tasks, for its runtime and
	// compiled modules (zero means 128MiB; see RATIONALE.md).
	ExecutorOverhead jobspec.Size `toml:"executor_overhead,omitempty"`
}

// Defaults of the cluster configuration.
const (
	DefaultAPIAddr     = "127.0.0.1:7070"
	DefaultControlAddr = "127.0.0.1:7071"
	DefaultGossipAddr  = "127.0.0.1:7946"
	DefaultAgentGrace  = 5 * time.Second
)

func (c *CoordinatorConfig) setDefaults() {
	if c.Name == "" {
		c.Name = "coordinator"
	}
	if c.APIAddr == "" {
		c.APIAddr = DefaultAPIAddr
	}
	if c.ControlAddr == "" {
		c.ControlAddr = DefaultControlAddr
	}
	if c.GossipAddr == "" {
		c.GossipAddr = DefaultGossipAddr
	}
	if c.AgentGrace <= 0 {
		c.AgentGrace = jobspec.Duration(DefaultAgentGrace)
	}
}

func (c *AgentConfig) setDefaults() {
	if c.GossipAddr == "" {
		c.GossipAddr = "127.0.0.1:0"
	}
	if c.BlockAddr == "" {
		c.BlockAddr = "127.0.0.1:0"
	}
}

// Validate says what is missing or wrong in a coordinator config.
func (c *CoordinatorConfig) Validate() error {
	var errs []error
	if c.StateDir == "" {
		errs = append(errs, errors.New("state_dir is required"))
	}
	errs = append(errs, c.TLS.validate()...)
	if c.GossipKey == "" {
		errs = append(errs, errors.New("gossip_key is required: a file with the serf keyring's key (grid init writes one)"))
	}
	if c.AdminTokenSHA256 == "" && len(c.Tenants) == 0 {
		errs = append(errs, errors.New("no admin_token_sha256 and no tenants: nobody could use the API"))
	}
	seen := map[string]bool{}
	for i, t := range c.Tenants {
		switch {
		case t.Name == "":
			errs = append(errs, fmt.Errorf("tenants[%d] has no name", i))
		case seen[t.Name]:
			errs = append(errs, fmt.Errorf("tenant %q is listed twice", t.Name))
		case t.TokenSHA256 != "" && !validHash(t.TokenSHA256):
			errs = append(errs, fmt.Errorf("tenant %q: token_sha256 must be 64 hex digits (the sha256 of its token, as grid init prints), or empty for a tenant only the admin submits for", t.Name))
		}
		seen[t.Name] = true
	}
	errs = append(errs, validateVolumes(c.Volumes)...)
	if err := c.validateResultsVolume(); err != nil {
		errs = append(errs, err)
	}
	if _, err := grantsFor(c.Volumes, c.Tenants); err != nil {
		errs = append(errs, err)
	}
	if c.AdminTokenSHA256 != "" && !validHash(c.AdminTokenSHA256) {
		errs = append(errs, errors.New("admin_token_sha256 must be 64 hex digits"))
	}
	errs = append(errs, c.Limits.validate()...)
	errs = append(errs, c.Audit.validate()...)
	if c.InsecureHTTP && !isLoopback(c.APIAddr) {
		errs = append(errs, fmt.Errorf("insecure_http (--insecure-http) would send bearer tokens in clear over the network: it is allowed only on a loopback api_addr (127.0.0.1, ::1 or localhost), not %q; serve HTTPS (the default) instead", c.APIAddr))
	}
	return errors.Join(errs...)
}

// validateResultsVolume checks that results_volume names a volume that no
// tenant is granted: tenants would read each other's results there.
func (c *CoordinatorConfig) validateResultsVolume() error {
	if c.ResultsVolume == "" {
		return nil
	}
	if !slices.ContainsFunc(c.Volumes, func(v storage.Volume) bool { return v.Name == c.ResultsVolume }) {
		return fmt.Errorf("results_volume %q is not one of the [[volumes]]: define it there (and grant it to no tenant)", c.ResultsVolume)
	}
	for _, t := range c.Tenants {
		if _, ok := t.Grants[c.ResultsVolume]; ok {
			return fmt.Errorf("results_volume %q is granted to tenant %q: every tenant's printed results are kept there, so no tenant may be granted it", c.ResultsVolume, t.Name)
		}
	}
	return nil
}

// isLoopback reports whether a listening address (host:port) is a
// loopback address only: an empty or unspecified host listens everywhere.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Validate says what is missing or wrong in an agent config.
func (c *AgentConfig) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name is required, and must be the common name of the agent's certificate"))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("state_dir is required"))
	}
	if len(c.Join) == 0 {
		errs = append(errs, errors.New("join is required: the gossip address of the coordinator (or of any node)"))
	}
	if c.GossipKey == "" {
		errs = append(errs, errors.New("gossip_key is required"))
	}
	errs = append(errs, c.TLS.validate()...)
	if c.CPUs < 0 || c.Memory < 0 || c.Disk < 0 || c.ExecutorOverhead < 0 {
		errs = append(errs, errors.New("cpus, memory, disk and executor_overhead cannot be negative"))
	}
	return errors.Join(errs...)
}

func (t TLSFiles) validate() []error {
	if t.CA == "" || t.Cert == "" || t.Key == "" {
		return []error{errors.New("tls.ca, tls.cert and tls.key are required (grid init makes them)")}
	}
	return nil
}

func validHash(h string) bool {
	b, err := hex.DecodeString(h)
	return err == nil && len(b) == sha256.Size
}

// HashToken is the hex sha256 of a bearer token, as configs store it.
func HashToken(token string) string { return tokens.Hash(token) }

// LoadCoordinatorConfig reads a coordinator config file; relative paths
// in it are relative to the file.
func LoadCoordinatorConfig(path string) (*CoordinatorConfig, error) {
	var c CoordinatorConfig
	err := loadConfig(path, &c, []*string{&c.StateDir, &c.GossipKey, &c.TLS.CA, &c.TLS.Cert, &c.TLS.Key, &c.CacheDir, &c.Audit.Path}, c.setDefaults, c.Validate)
	return &c, err
}

// LoadAgentConfig reads an agent config file.
func LoadAgentConfig(path string) (*AgentConfig, error) {
	var c AgentConfig
	err := loadConfig(path, &c, []*string{&c.StateDir, &c.GossipKey, &c.TLS.CA, &c.TLS.Cert, &c.TLS.Key, &c.CacheDir}, c.setDefaults, c.Validate)
	return &c, err
}

// loadConfig decodes path into v, makes the paths relative to the file,
// sets the defaults and validates.
func loadConfig(path string, v any, paths []*string, defaults func(), validate func() error) error {
	if err := decodeConfig(path, v); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	for _, p := range paths {
		*p = relTo(dir, *p)
	}
	defaults()
	if err := validate(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func decodeConfig(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var sme *toml.StrictMissingError
		if errors.As(err, &sme) {
			var keys []string
			for _, e := range sme.Errors {
				row, _ := e.Position()
				keys = append(keys, fmt.Sprintf("%s:%d: unknown setting %q", path, row, strings.Join(e.Key(), ".")))
			}
			return fmt.Errorf("%s (grid config example lists every setting)", strings.Join(keys, "; "))
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return fmt.Errorf("%s:%d:%d: %s", path, row, col, de.Error())
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func relTo(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// WriteConfig writes a config as TOML.
func WriteConfig(path string, v any) error {
	b, err := toml.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// ExampleConfig is the commented configuration `grid config example`
// prints: every setting with its default.
const ExampleConfig = `# wasmgrid cluster configuration. "grid coordinator --config FILE" reads
# the [coordinator] part of a file like this one, "grid agent --config FILE"
# an agent file. Relative paths are relative to the file. "grid init DIR"
# writes the authority, certificates, gossip key, tokens and both files.

# ---- coordinator.toml ----
name = "coordinator"           # must be the common name of tls.cert
state_dir = "state"            # jobs' results and the coordinator's files
api_addr = "127.0.0.1:7070"    # HTTPS API (tls.cert); port 0 picks a free one (printed)
insecure_http = false          # plain HTTP instead: tokens in clear; loopback api_addr only
control_addr = "127.0.0.1:7071" # QUIC control plane (UDP); port 0 picks one
gossip_addr = "127.0.0.1:7946" # serf (TCP and UDP); port 0 picks one
gossip_key = "gossip.key"      # base64 of 32 bytes: encrypts gossip
agent_grace = "5s"             # an agent gone this long is declared lost
admin_token_sha256 = ""        # sha256 (hex) of the admin token
cache_dir = ""                 # compiled modules; default: the user cache
results_volume = ""            # a [[volumes]] name for printed results (stdout sinks), granted
                               # to no tenant; default STATE_DIR/results. With several servers,
                               # one they all reach, or a result is gone with its leader
# Several coordinator servers (grid init --coordinators 3; docs/operations.md):
# server_id = 1                # this server's id among [[servers]]
# raft_addr = "127.0.0.1:7081" # its replicated log (UDP, QUIC)
# join_cluster = false         # true for a server grid servers add just added:
#                              # an empty state_dir takes the leader's state
# [[servers]]                  # every server, this one included: id, name
# id = 1                       # (its certificate's), raft_addr, api_addr,
# name = "coordinator-1"       # gossip_addr; must match the members the
# raft_addr = "127.0.0.1:7081" # log records (grid servers lists them)
# api_addr = "127.0.0.1:7070"
# gossip_addr = "127.0.0.1:7946"

[history]                      # finished jobs kept (docs/core.md)
max_jobs = 1000
max_age = "168h"

[tls]
ca = "ca.pem"                  # the cluster's authority: only nodes with
cert = "coordinator.pem"       # certificates from it may join
key = "coordinator-key.pem"

[limits]                       # what one tenant, token or address can make the coordinator hold
request_body = "8MiB"          # a request's JSON body (a job's spec and inline values): 413
module_size = "256MiB"         # one module upload: 413
modules_per_tenant = 256       # modules a tenant holds (DELETE /v1/modules/HASH frees one): 413
module_bytes_per_tenant = "4GiB"
uploads_per_tenant = 2         # uploads in progress at once: 429
jobs_per_tenant = 16           # jobs being admitted or running: 429
requests_per_second = 20.0     # per token, with a burst of request_burst: 429 + Retry-After
request_burst = 40
auth_failures_per_minute = 30.0 # failed authentications per client address (IPv6: per /64),
auth_failure_burst = 10        # then every request from it is 429 until the budget refills
streams_per_token = 8          # open event streams (GET .../events): 429
inspectors = 2                 # manifests read at once, each in an executor process
inspector_queue = 8            # submissions waiting for one; past it 503 + Retry-After
inspector_memory = "256MiB"    # a module's initialization when its manifest is read
partitions = 10000             # per job: partitions and every step's partitions: 400
splits = 10000                 # per job: input splits (raise source.split_size): 400
inline_values = 100000         # per job: source.inline values: 400
modules_per_job = 16           # per job: modules in the spec: 400

[audit]                        # a JSON line per change (upload, submit, cancel, tokens) and per refusal
path = ""                      # default: STATE_DIR/coordinator/audit.log
disable = false
max_size = "100MiB"            # rotated past this size
max_backups = 10               # rotated files kept
max_age = "720h"               # and for how long

[[tenants]]
name = "analytics"
token_sha256 = "..."           # sha256 (hex) of the tenant's token
weight = 1                     # DRF weight (default 1)
guarantee = { cpus = 0, mem = "0B" }   # quota guarantee
limit = { cpus = 0, mem = "0B" }       # quota limit; 0 = none
grants = { shared = "read-write" }     # volumes its jobs may use: "read" or "read-write"

# Places jobs read and write (docs/storage.md); none unless defined and granted.
[[volumes]]
name = "shared"
url = "file:///srv/wasmgrid/shared"    # a directory every agent sees, or s3://bucket/prefix
# endpoint = "http://127.0.0.1:8333"   # s3: an S3-compatible server (empty: AWS)
# region = "us-east-1"
# access_key = "..."                   # s3: credentials stay on the servers
# secret_key = "..."

# ---- agent.toml ----
# name = "agent-1"             # must be the common name of tls.cert
# state_dir = "agent-1"        # shuffle files, modules
# join = ["127.0.0.1:7946"]    # gossip address of the coordinator or any node
# gossip_addr = "127.0.0.1:0"
# gossip_key = "gossip.key"
# block_addr = "127.0.0.1:0"   # QUIC block server (UDP)
# cpus = 0                     # 0: the machine's CPUs
# memory = "0B"                # 0: half the machine's memory
# disk = "0B"                  # 0: 80% of the free disk under state_dir
# cache_dir = ""               # compiled modules; default: the user cache
# executor_overhead = "0B"     # memory of a tenant's executor beyond its
#                              # tasks' task.memory; 0: 128MiB
# [tls]
# ca = "ca.pem"
# cert = "agent-1.pem"
# key = "agent-1-key.pem"
`

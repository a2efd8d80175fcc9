package grid

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/wasmgrid/wasmgrid/internal/storage"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/certs"
)

// InitOptions says what InitCluster makes.
type InitOptions struct {
	Dir     string
	Agents  int      // agent certificates and configs: agent-1 .. agent-N
	Tenants []string // tenants, each with a token
	// Addresses of the coordinator; empty means the defaults. With
	// several coordinator servers, server i (from 0) takes each port plus
	// 100*i, or, where a port is 0, a port free on this machine now.
	APIAddr, ControlAddr, GossipAddr string
	// Coordinators is the number of coordinator servers that share the
	// replicated job state: 1 (default), 3 or 5.
	Coordinators int
	// FixedPorts chooses a free port now for every address whose port is
	// 0, also for a single coordinator: a process restarted on the same
	// config is found where it was (grid up).
	FixedPorts bool
	// Hosts the node certificates name besides 127.0.0.1, ::1 and
	// localhost: the coordinator's API serves HTTPS with its certificate,
	// and clients check that it names the host they reach it by (peers of
	// the control plane check the authority only).
	Hosts []string
}

// InitResult is what InitCluster made. Tokens are shown once: only their
// hashes are in the configs.
type InitResult struct {
	AdminToken   string
	TenantTokens map[string]string
	Coordinator  string   // the (first) coordinator server's config path
	Coordinators []string // every coordinator server's config path
	Agents       []string // config paths
	// EnvFiles are the client files, by "admin" and tenant name: each
	// exports GRID_ADDR, GRID_TOKEN and GRID_CA for the CLI and the SDK
	// (". analytics.env").
	EnvFiles map[string]string
}

// certValidity is how long grid init's certificates last.
const certValidity = 365 * 24 * time.Hour

// InitCluster writes a cluster's authority (ca.pem, ca-key.pem), gossip
// key, node certificates, tokens and configs under opts.Dir.
func InitCluster(opts InitOptions) (*InitResult, error) {
	for _, t := range opts.Tenants {
		if !validTenantName(t) {
			return nil, fmt.Errorf("tenant name %q: use letters, digits, '.', '_' and '-' (it names the tenant's client file, TENANT.env), and not \"admin\"", t)
		}
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := certs.NewCA("wasmgrid cluster", certValidity)
	if err != nil {
		return nil, err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	write := func(name string, b []byte, mode os.FileMode) error {
		return os.WriteFile(filepath.Join(opts.Dir, name), b, mode)
	}
	if err := write("ca.pem", ca.CertPEM, 0o644); err != nil {
		return nil, err
	}
	if err := write("ca-key.pem", caKey, 0o600); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := write("gossip.key", []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, err
	}
	hosts := []string{"127.0.0.1", "::1", "localhost"}
	for _, h := range opts.Hosts {
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	issue := func(name string) (TLSFiles, error) {
		c, err := ca.Issue(name, hosts, certValidity)
		if err != nil {
			return TLSFiles{}, err
		}
		certPEM, keyPEM, err := certs.EncodePEM(c)
		if err != nil {
			return TLSFiles{}, err
		}
		if err := write(name+".pem", certPEM, 0o644); err != nil {
			return TLSFiles{}, err
		}
		if err := write(name+"-key.pem", keyPEM, 0o600); err != nil {
			return TLSFiles{}, err
		}
		return TLSFiles{CA: "ca.pem", Cert: name + ".pem", Key: name + "-key.pem"}, nil
	}
	res := &InitResult{AdminToken: newToken(), TenantTokens: map[string]string{}, EnvFiles: map[string]string{}}
	n := max(opts.Coordinators, 1)
	if n != 1 && n != 3 && n != 5 {
		return nil, fmt.Errorf("%d coordinators: run 1, 3 or 5 (a majority of them must be up for the grid to work)", n)
	}
	var tenants []TenantConfig
	for _, t := range opts.Tenants {
		tok := newToken()
		res.TenantTokens[t] = tok
		tenants = append(tenants, TenantConfig{Name: t, TokenSHA256: HashToken(tok), Weight: 1})
	}
	var configs []CoordinatorConfig
	var servers []ServerConfig
	var urls, gossips []string
	for i := range n {
		name, stateDir := "coordinator", "coordinator-state"
		if n > 1 {
			name, stateDir = fmt.Sprintf("coordinator-%d", i+1), fmt.Sprintf("coordinator-%d-state", i+1)
		}
		tlsFiles, err := issue(name)
		if err != nil {
			return nil, err
		}
		cc := CoordinatorConfig{
			Name: name, StateDir: stateDir,
			APIAddr: opts.APIAddr, ControlAddr: opts.ControlAddr, GossipAddr: opts.GossipAddr,
			GossipKey: "gossip.key", TLS: tlsFiles, AdminTokenSHA256: HashToken(res.AdminToken),
			Tenants: slices.Clone(tenants),
		}
		cc.setDefaults()
		if n > 1 || opts.FixedPorts {
			cc.ServerID = uint64(i + 1)
			var err error
			control := cc.ControlAddr
			if cc.APIAddr, err = serverAddr(cc.APIAddr, i, "tcp"); err == nil {
				if cc.ControlAddr, err = serverAddr(control, i, "udp"); err == nil {
					if cc.GossipAddr, err = serverAddr(cc.GossipAddr, i, "tcp"); err == nil {
						cc.RaftAddr, err = raftAddr(control, i)
					}
				}
			}
			if err != nil {
				return nil, err
			}
			if n > 1 {
				servers = append(servers, ServerConfig{ID: cc.ServerID, Name: name, RaftAddr: cc.RaftAddr, APIAddr: cc.APIAddr, GossipAddr: cc.GossipAddr})
			}
		}
		configs = append(configs, cc)
		urls = append(urls, initAPIURL(cc.APIAddr, opts.Hosts))
		gossips = append(gossips, cc.GossipAddr)
	}
	// Several servers on this machine keep printed results in one
	// directory, so that a result written under one leader is read under
	// the next (on several hosts, results_volume must name a volume they
	// all reach).
	var results *storage.Volume
	if n > 1 {
		dir, err := filepath.Abs(filepath.Join(opts.Dir, "results"))
		if err == nil {
			err = os.MkdirAll(dir, 0o700)
		}
		if err != nil {
			return nil, fmt.Errorf("grid: the servers' results directory: %w", err)
		}
		results = &storage.Volume{Name: "grid-results", URL: "file://" + dir}
	}
	for i, cc := range configs {
		cc.Servers = servers
		if results != nil {
			cc.Volumes = append(cc.Volumes, *results)
			cc.ResultsVolume = results.Name
		}
		path := filepath.Join(opts.Dir, cc.Name+".toml")
		if err := WriteConfig(path, cc); err != nil {
			return nil, err
		}
		res.Coordinators = append(res.Coordinators, path)
		if i == 0 {
			res.Coordinator = path
		}
	}
	url := strings.Join(urls, ",")
	caFile := filepath.Join(opts.Dir, "ca.pem")
	clients := map[string]string{"admin": res.AdminToken}
	maps.Copy(clients, res.TenantTokens)
	for who, tok := range clients {
		path := filepath.Join(opts.Dir, who+".env")
		if err := WriteClientEnv(path, ClientEnv{Addr: url, Token: tok, CA: caFile}); err != nil {
			return nil, err
		}
		res.EnvFiles[who] = path
	}
	for i := range opts.Agents {
		name := fmt.Sprintf("agent-%d", i+1)
		tf, err := issue(name)
		if err != nil {
			return nil, err
		}
		ac := AgentConfig{Name: name, StateDir: name + "-state", Join: gossips, GossipKey: "gossip.key", TLS: tf}
		path := filepath.Join(opts.Dir, name+".toml")
		if err := WriteConfig(path, ac); err != nil {
			return nil, err
		}
		res.Agents = append(res.Agents, path)
	}
	return res, nil
}

// serverAddr is coordinator server i's address: addr's port plus 100*i,
// or a port free on this machine now where addr's is 0.
func serverAddr(addr string, i int, network string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	if p != 0 {
		return net.JoinHostPort(host, strconv.Itoa(p+100*i)), nil
	}
	return freePort(host, network)
}

// raftAddr is coordinator server i's replicated log address: the control
// port plus 10 plus 100*i, or a free port when the control port is 0.
func raftAddr(control string, i int) (string, error) {
	host, port, err := net.SplitHostPort(control)
	if err != nil {
		return "", err
	}
	p, _ := strconv.Atoi(port)
	if p == 0 {
		return freePort(host, "udp")
	}
	return net.JoinHostPort(host, strconv.Itoa(p+10+100*i)), nil
}

// freePort is host with a port that was free a moment ago.
func freePort(host, network string) (string, error) {
	if network == "udp" {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", err
		}
		defer pc.Close()
		return pc.LocalAddr().String(), nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// validTenantName reports whether a tenant name can name a client file.
func validTenantName(t string) bool {
	if t == "" || t == "admin" || t[0] == '.' || t[0] == '-' {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// initAPIURL is the URL clients reach an API listening at addr by: its
// host, or for an API listening on every address the first extra host
// (else 127.0.0.1). A port of 0 stays 0: the coordinator picks one and
// writes it to addresses.json (grid up rewrites its grid.env with it).
func initAPIURL(addr string, hosts []string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "https://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if len(hosts) > 0 {
			host = hosts[0]
		}
	}
	return "https://" + net.JoinHostPort(host, port)
}

// ClientEnv is what a client needs to reach the API: the shell
// variables the CLI and the SDK read.
type ClientEnv struct {
	Addr  string // GRID_ADDR: the API's URL
	Token string // GRID_TOKEN: a bearer token
	CA    string // GRID_CA: the PEM file of the authority that issued the coordinator's certificate
}

// WriteClientEnv writes a client file that ". FILE" sources: GRID_ADDR,
// GRID_TOKEN and GRID_CA, exported, in a file only its owner may read
// (it holds a token).
func WriteClientEnv(path string, e ClientEnv) error {
	text := fmt.Sprintf("# wasmgrid API credentials: \". %s\" points the grid CLI and the Go SDK at the cluster.\n# It holds a bearer token: keep it private.\nexport GRID_ADDR=%s\nexport GRID_TOKEN=%s\nexport GRID_CA=%s\n",
		filepath.Base(path), shellQuote(e.Addr), shellQuote(e.Token), shellQuote(e.CA))
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		return err
	}
	// WriteFile keeps the mode of a file that exists.
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-:+@%=,[]", r)) {
			safe = false
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Addresses is what a coordinator writes to addresses.json in its state
// directory once it listens, so that tools started with port 0 find it.
type Addresses struct {
	API     string `json:"api"`
	APIURL  string `json:"api_url"` // https://API, or http:// with insecure_http
	Control string `json:"control"`
	Gossip  string `json:"gossip"`
}

// WriteAddresses records the coordinator's addresses in its state
// directory (atomically).
func (c *Coordinator) WriteAddresses() (string, error) {
	if err := os.MkdirAll(c.cfg.StateDir, 0o755); err != nil {
		return "", err
	}
	b, _ := json.MarshalIndent(Addresses{API: c.APIAddr(), APIURL: c.APIURL(), Control: c.ControlAddr(), Gossip: c.GossipAddr()}, "", "  ")
	path := filepath.Join(c.cfg.StateDir, "addresses.json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

package grid

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/certs"
)

// InitOptions says what InitCluster makes.
type InitOptions struct {
	Dir     string
	Agents  int      // agent certificates and configs: agent-1 .. agent-N
	Tenants []string // tenants, each with a token
	// Addresses of the coordinator; empty means the defaults.
	APIAddr, ControlAddr, GossipAddr string
	// Hosts the node certificates name (informational: peers check the
	// authority, not host names).
	Hosts []string
}

// InitResult is what InitCluster made. Tokens are shown once: only their
// hashes are in the configs.
type InitResult struct {
	AdminToken   string
	TenantTokens map[string]string
	Coordinator  string   // config path
	Agents       []string // config paths
}

// certValidity is how long grid init's certificates last.
const certValidity = 365 * 24 * time.Hour

// InitCluster writes a cluster's authority (ca.pem, ca-key.pem), gossip
// key, node certificates, tokens and configs under opts.Dir.
func InitCluster(opts InitOptions) (*InitResult, error) {
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
	hosts := opts.Hosts
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "::1", "localhost"}
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
	res := &InitResult{AdminToken: newToken(), TenantTokens: map[string]string{}}
	tlsFiles, err := issue("coordinator")
	if err != nil {
		return nil, err
	}
	cc := CoordinatorConfig{
		Name: "coordinator", StateDir: "coordinator-state",
		APIAddr: opts.APIAddr, ControlAddr: opts.ControlAddr, GossipAddr: opts.GossipAddr,
		GossipKey: "gossip.key", TLS: tlsFiles, AdminTokenSHA256: HashToken(res.AdminToken),
		AgentGrace: 0,
	}
	cc.setDefaults()
	for _, t := range opts.Tenants {
		tok := newToken()
		res.TenantTokens[t] = tok
		cc.Tenants = append(cc.Tenants, TenantConfig{Name: t, TokenSHA256: HashToken(tok), Weight: 1})
	}
	res.Coordinator = filepath.Join(opts.Dir, "coordinator.toml")
	if err := WriteConfig(res.Coordinator, cc); err != nil {
		return nil, err
	}
	for i := range opts.Agents {
		name := fmt.Sprintf("agent-%d", i+1)
		tf, err := issue(name)
		if err != nil {
			return nil, err
		}
		ac := AgentConfig{Name: name, StateDir: name + "-state", Join: []string{cc.GossipAddr}, GossipKey: "gossip.key", TLS: tf}
		path := filepath.Join(opts.Dir, name+".toml")
		if err := WriteConfig(path, ac); err != nil {
			return nil, err
		}
		res.Agents = append(res.Agents, path)
	}
	return res, nil
}

// Addresses is what a coordinator writes to addresses.json in its state
// directory once it listens, so that tools started with port 0 find it.
type Addresses struct {
	API     string `json:"api"`
	Control string `json:"control"`
	Gossip  string `json:"gossip"`
}

// WriteAddresses records the coordinator's addresses in its state
// directory (atomically).
func (c *Coordinator) WriteAddresses() (string, error) {
	if err := os.MkdirAll(c.cfg.StateDir, 0o755); err != nil {
		return "", err
	}
	b, _ := json.MarshalIndent(Addresses{API: c.APIAddr(), Control: c.ControlAddr(), Gossip: c.GossipAddr()}, "", "  ")
	path := filepath.Join(c.cfg.StateDir, "addresses.json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

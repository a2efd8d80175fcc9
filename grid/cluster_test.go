package grid

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
	"go.uber.org/goleak"
)

// apiClient is an HTTPS client that trusts only the cluster's authority.
func apiClient(t testing.TB, caFile string) *http.Client {
	t.Helper()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("no certificate in ca.pem")
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}}}
}

// TestClusterInProcess runs a coordinator and two agents in this process
// over real QUIC and serf, checks the API's view of them and its tokens,
// and that stopping them leaves no goroutine behind.
func TestClusterInProcess(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	dir := t.TempDir()
	res, err := InitCluster(InitOptions{Dir: dir, Agents: 2, Tenants: []string{"a", "b"}, APIAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ccfg, err := LoadCoordinatorConfig(res.Coordinator)
	if err != nil {
		t.Fatal(err)
	}
	ccfg.CacheDir = testCacheDir
	coord, err := NewCoordinator(*ccfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	running := 1
	go func() { coord.Run(ctx); done <- struct{}{} }()
	for _, path := range res.Agents {
		acfg, err := LoadAgentConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		acfg.Join, acfg.CacheDir, acfg.CPUs, acfg.Memory = []string{coord.GossipAddr()}, testCacheDir, 1, 1<<30
		a, err := NewAgent(*acfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		running++
		go func() { a.Run(ctx); done <- struct{}{} }()
	}
	hc := apiClient(t, filepath.Join(dir, "ca.pem"))
	defer hc.CloseIdleConnections()
	get := func(token, path string, out any) int {
		req, _ := http.NewRequest(http.MethodGet, coord.APIURL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	var agents struct{ Agents []api.AgentInfo }
	for deadline := time.Now().Add(20 * time.Second); len(agents.Agents) < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("agents registered: %+v", agents.Agents)
		}
		get(res.AdminToken, "/v1/agents", &agents)
	}
	for _, a := range agents.Agents {
		if a.Status != "alive" || a.CPUMillis != 1000 || a.MemMiB != 1024 || !strings.HasPrefix(a.ID, "agent-") {
			t.Errorf("agent %+v", a)
		}
	}
	if code := get("wrong", "/v1/jobs", nil); code != http.StatusUnauthorized {
		t.Errorf("a wrong token: HTTP %d, want 401", code)
	}
	if code := get(res.TenantTokens["a"], "/v1/jobs/job-1", nil); code != http.StatusNotFound {
		t.Errorf("a job that does not exist: HTTP %d, want 404", code)
	}
	// Plain HTTP to the HTTPS API is refused before any handler reads
	// the token.
	plain, err := http.Get("http://" + coord.APIAddr() + "/v1/jobs")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(plain.Body)
	plain.Body.Close()
	if plain.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTPS") {
		t.Errorf("plain HTTP to the API: HTTP %d %q, want 400 and a word about HTTPS", plain.StatusCode, body)
	}
	var tenants struct{ Tenants []api.TenantInfo }
	get(res.TenantTokens["a"], "/v1/tenants", &tenants)
	if len(tenants.Tenants) != 1 || tenants.Tenants[0].Name != "a" {
		t.Errorf("tenant a sees tenants %+v", tenants.Tenants)
	}
	cancel()
	for range running {
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("the cluster did not stop within 20 s")
		}
	}
	goleak.VerifyNone(t, ignore)
}

// TestInitTLSFiles: grid init's coordinator certificate can serve HTTPS
// for the loopback names and every --host, and the client files export
// an https:// URL, a token and the CA, readable by their owner only.
func TestInitTLSFiles(t *testing.T) {
	dir := t.TempDir()
	res, err := InitCluster(InitOptions{Dir: dir, Agents: 1, Tenants: []string{"etl"}, APIAddr: "0.0.0.0:7070", Hosts: []string{"grid.example", "10.1.2.3"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadCoordinatorConfig(res.Coordinator)
	if err != nil {
		t.Fatal(err)
	}
	id, err := loadNode(cfg.TLS, cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(id.cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"127.0.0.1:7070", "[::1]:7070", "localhost:7070", "grid.example:7070", "10.1.2.3:7070", "0.0.0.0:7070"} {
		if err := checkServerCert(leaf, addr); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	if err := checkServerCert(leaf, "10.9.9.9:7070"); err == nil || !strings.Contains(err.Error(), "grid init --host 10.9.9.9") {
		t.Errorf("a host the certificate does not name: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(id.caPEM)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "grid.example", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("the coordinator's certificate does not verify as a server's: %v", err)
	}
	for who, want := range map[string]string{"admin": res.AdminToken, "etl": res.TenantTokens["etl"]} {
		path := res.EnvFiles[who]
		if filepath.Base(path) != who+".env" {
			t.Errorf("%s's client file is %s", who, path)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(path)
		for _, line := range []string{"export GRID_ADDR=https://grid.example:7070\n", "export GRID_TOKEN=" + want + "\n", "export GRID_CA=" + filepath.Join(dir, "ca.pem") + "\n"} {
			if !strings.Contains(string(b), line) {
				t.Errorf("%s lacks %q:\n%s", path, line, b)
			}
		}
	}
	if _, err := InitCluster(InitOptions{Dir: t.TempDir(), Tenants: []string{"../x"}}); err == nil {
		t.Error("a tenant name that is a path was accepted")
	}
}

// TestInsecureHTTPOnlyOnLoopback: plain HTTP is refused on any address
// but loopback, and served there.
func TestInsecureHTTPOnlyOnLoopback(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	dir := t.TempDir()
	res, err := InitCluster(InitOptions{Dir: dir, APIAddr: "0.0.0.0:0", ControlAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadCoordinatorConfig(res.Coordinator)
	if err != nil {
		t.Fatal(err)
	}
	cfg.InsecureHTTP = true
	if _, err := NewCoordinator(*cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "allowed only on a loopback api_addr") {
		t.Fatalf("insecure_http on 0.0.0.0: %v", err)
	}
	cfg.APIAddr, cfg.CacheDir = "127.0.0.1:0", testCacheDir
	c, err := NewCoordinator(*cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.APIURL(), "http://127.0.0.1:") {
		t.Errorf("APIURL %s", c.APIURL())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	req, _ := http.NewRequest(http.MethodGet, c.APIURL()+"/v1/jobs", nil)
	req.Header.Set("Authorization", "Bearer "+res.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("plain HTTP on loopback with insecure_http: HTTP %d", resp.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	<-done
	goleak.VerifyNone(t, ignore)
}

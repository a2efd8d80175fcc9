package grid

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

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
	get := func(token, path string, out any) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+coord.APIAddr()+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	var agents struct{ Agents []AgentInfo }
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
	var tenants struct{ Tenants []TenantInfo }
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

package grid

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/internal/tokens"
	"go.uber.org/goleak"
)

// testAPI is a coordinator without agents, serving its API over HTTPS in
// this process, and a client that trusts the cluster's authority.
type testAPI struct {
	t     *testing.T
	coord *Coordinator
	init  *InitResult
	hc    *http.Client
}

// startAPI starts a coordinator for tenants; edit changes its config.
// It stops at the end of the test, leaving no goroutine behind.
func startAPI(t *testing.T, tenants []string, edit func(*CoordinatorConfig), setup func(*Coordinator)) *testAPI {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	dir := t.TempDir()
	res, err := InitCluster(InitOptions{Dir: dir, Tenants: tenants, APIAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadCoordinatorConfig(res.Coordinator)
	if err != nil {
		t.Fatal(err)
	}
	cfg.CacheDir = testCacheDir
	if edit != nil {
		edit(cfg)
	}
	c, err := NewCoordinator(*cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	a := &testAPI{t: t, coord: c, init: res, hc: apiClient(t, filepath.Join(dir, "ca.pem"))}
	t.Cleanup(func() {
		a.hc.CloseIdleConnections()
		cancel()
		<-done
		goleak.VerifyNone(t, ignore)
	})
	return a
}

// do sends a request with token and returns the status, body and header.
func (a *testAPI) do(token, method, path string, body io.Reader) (int, []byte, http.Header) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.coord.APIURL()+path, body)
	if err != nil {
		a.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func (a *testAPI) createToken(admin, tenant string, role api.Role) api.NewToken {
	a.t.Helper()
	body, _ := json.Marshal(api.CreateTokenRequest{Tenant: tenant, Role: role})
	code, b, _ := a.do(admin, http.MethodPost, "/v1/tokens", bytes.NewReader(body))
	if code != http.StatusCreated {
		a.t.Fatalf("POST /v1/tokens: HTTP %d %s", code, b)
	}
	var nt api.NewToken
	if err := json.Unmarshal(b, &nt); err != nil {
		a.t.Fatal(err)
	}
	return nt
}

// TestAPIRoles: every route checks the role of its token.
func TestAPIRoles(t *testing.T) {
	a := startAPI(t, []string{"etl", "bi"}, nil, nil)
	admin := a.init.AdminToken
	read := a.createToken(admin, "etl", api.RoleRead)
	submit := a.createToken(admin, "etl", api.RoleSubmit)
	if code, b, _ := a.do(admin, http.MethodPost, "/v1/tokens", strings.NewReader(`{"tenant":"nobody","role":"submit"}`)); code != http.StatusBadRequest || !strings.Contains(string(b), "not in the coordinator's config") {
		t.Errorf("a token for an unknown tenant: HTTP %d %s", code, b)
	}
	if code, b, _ := a.do(admin, http.MethodPost, "/v1/tokens", strings.NewReader(`{"role":"root"}`)); code != http.StatusBadRequest {
		t.Errorf("a token of an unknown role: HTTP %d %s", code, b)
	}
	wasm := "\x00asm\x01\x00\x00\x00"
	tests := []struct {
		token        string
		method, path string
		body         string
		want         int
	}{
		{read.Token, "GET", "/v1/jobs", "", 200},
		{read.Token, "GET", "/v1/modules", "", 200},
		{read.Token, "GET", "/v1/tenants", "", 200},
		{read.Token, "GET", "/v1/jobs/job-1", "", 404},
		{read.Token, "PUT", "/v1/modules", wasm, 403},
		{read.Token, "POST", "/v1/jobs", "{}", 403},
		{read.Token, "POST", "/v1/jobs/job-1/cancel", "", 403},
		{read.Token, "GET", "/v1/tokens", "", 403},
		{read.Token, "GET", "/v1/events", "", 403},
		{submit.Token, "PUT", "/v1/modules", wasm, 200},
		{submit.Token, "POST", "/v1/jobs", "{", 400},
		{submit.Token, "POST", "/v1/jobs/job-1/cancel", "", 404},
		{submit.Token, "GET", "/v1/tokens", "", 403},
		{submit.Token, "POST", "/v1/tokens", `{"tenant":"etl","role":"admin"}`, 403},
		{submit.Token, "DELETE", "/v1/tokens/" + read.ID, "", 403},
		{admin, "GET", "/v1/tokens", "", 200},
		{"", "GET", "/v1/jobs", "", 401},
		{"wrong", "GET", "/v1/jobs", "", 401},
	}
	for _, tt := range tests {
		code, b, _ := a.do(tt.token, tt.method, tt.path, strings.NewReader(tt.body))
		if code != tt.want {
			who := "no token"
			switch tt.token {
			case read.Token:
				who = "read-only"
			case submit.Token:
				who = "submit"
			case admin:
				who = "admin"
			}
			t.Errorf("%s %s with %s: HTTP %d %s, want %d", tt.method, tt.path, who, code, b, tt.want)
		}
	}
	_, b, _ := a.do(admin, http.MethodGet, "/v1/tokens", nil)
	if bytes.Contains(b, []byte(read.Token)) || bytes.Contains(b, []byte(HashToken(read.Token))) {
		t.Errorf("GET /v1/tokens shows a secret or a hash:\n%s", b)
	}
	var list struct{ Tokens []api.TokenInfo }
	json.Unmarshal(b, &list)
	if len(list.Tokens) != 5 { // bootstrap admin, etl, bi; read; submit
		t.Errorf("GET /v1/tokens lists %d tokens: %+v", len(list.Tokens), list.Tokens)
	}
}

// TestRevokedTokenRefused: a revoked token's next request is 401, and a
// rotated token's replacement works at once.
func TestRevokedTokenRefused(t *testing.T) {
	a := startAPI(t, []string{"etl"}, nil, nil)
	admin := a.init.AdminToken
	tok := a.createToken(admin, "etl", api.RoleSubmit)
	if code, _, _ := a.do(tok.Token, http.MethodGet, "/v1/jobs", nil); code != http.StatusOK {
		t.Fatalf("a new token: HTTP %d", code)
	}
	if code, b, _ := a.do(admin, http.MethodDelete, "/v1/tokens/"+tok.ID, nil); code != http.StatusOK {
		t.Fatalf("revoke: HTTP %d %s", code, b)
	}
	start := time.Now()
	if code, _, _ := a.do(tok.Token, http.MethodGet, "/v1/jobs", nil); code != http.StatusUnauthorized {
		t.Errorf("a revoked token: HTTP %d, want 401", code)
	}
	t.Logf("refused %s after its revocation was acknowledged", time.Since(start))
	if code, _, _ := a.do(admin, http.MethodDelete, "/v1/tokens/tok-nothing", nil); code != http.StatusNotFound {
		t.Errorf("revoking no token: HTTP %d", code)
	}
	// Revoking the config's tenant token works like any other.
	if code, _, _ := a.do(admin, http.MethodDelete, "/v1/tokens/"+tokens.BootstrapID("etl"), nil); code != http.StatusOK {
		t.Errorf("revoke a bootstrap token: HTTP %d", code)
	}
	if code, _, _ := a.do(a.init.TenantTokens["etl"], http.MethodGet, "/v1/jobs", nil); code != http.StatusUnauthorized {
		t.Errorf("a revoked bootstrap token: HTTP %d, want 401", code)
	}
	code, b, _ := a.do(admin, http.MethodPost, "/v1/tokens/"+tokens.BootstrapID("")+"/rotate", nil)
	if code != http.StatusCreated {
		t.Fatalf("rotate the admin token: HTTP %d %s", code, b)
	}
	var nt api.NewToken
	json.Unmarshal(b, &nt)
	if code, _, _ := a.do(admin, http.MethodGet, "/v1/jobs", nil); code != http.StatusUnauthorized {
		t.Errorf("the rotated admin token: HTTP %d, want 401", code)
	}
	if code, _, _ := a.do(nt.Token, http.MethodGet, "/v1/tokens", nil); code != http.StatusOK || nt.Role != api.RoleAdmin {
		t.Errorf("its replacement (%+v): HTTP %d", nt.TokenInfo, code)
	}
}

// TestTokenRateLimit: a token past its request rate gets 429 with
// Retry-After while another token is served; the budget refills with
// the (fake) clock.
func TestTokenRateLimit(t *testing.T) {
	clock := newFakeClock()
	a := startAPI(t, []string{"etl", "bi"}, func(cfg *CoordinatorConfig) {
		cfg.Limits.RequestsPerSecond, cfg.Limits.RequestBurst = 2, 5
	}, func(c *Coordinator) { c.limits = newAPILimits(c.lim, clock.now) })
	flood, other := a.init.TenantTokens["etl"], a.init.TenantTokens["bi"]
	for i := range 5 {
		if code, b, _ := a.do(flood, http.MethodGet, "/v1/jobs", nil); code != http.StatusOK {
			t.Fatalf("request %d of the burst: HTTP %d %s", i, code, b)
		}
	}
	code, b, h := a.do(flood, http.MethodGet, "/v1/jobs", nil)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") != "1" || !strings.Contains(string(b), "limits.requests_per_second") {
		t.Errorf("past the burst: HTTP %d, Retry-After %q, %s", code, h.Get("Retry-After"), b)
	}
	if code, _, _ := a.do(other, http.MethodGet, "/v1/jobs", nil); code != http.StatusOK {
		t.Errorf("another token during the flood: HTTP %d", code)
	}
	clock.advance(500 * time.Millisecond) // one request's worth at 2/s
	if code, _, _ := a.do(flood, http.MethodGet, "/v1/jobs", nil); code != http.StatusOK {
		t.Errorf("after the budget refilled: HTTP %d", code)
	}
	if code, _, _ := a.do(flood, http.MethodGet, "/v1/jobs", nil); code != http.StatusTooManyRequests {
		t.Errorf("right after: HTTP %d", code)
	}
}

// TestAuthFailureThrottle: a client address that keeps failing to
// authenticate is refused with 429 before its token is looked at.
func TestAuthFailureThrottle(t *testing.T) {
	clock := newFakeClock()
	a := startAPI(t, []string{"etl"}, func(cfg *CoordinatorConfig) {
		cfg.Limits.AuthFailuresPerMinute, cfg.Limits.AuthFailureBurst = 6, 3
	}, func(c *Coordinator) { c.limits = newAPILimits(c.lim, clock.now) })
	for i := range 3 {
		if code, _, _ := a.do("guess", http.MethodGet, "/v1/jobs", nil); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: HTTP %d, want 401", i, code)
		}
	}
	code, b, h := a.do("guess", http.MethodGet, "/v1/jobs", nil)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") != "10" {
		t.Errorf("past the failures' burst: HTTP %d, Retry-After %q, %s", code, h.Get("Retry-After"), b)
	}
	// Even the right token waits: a guess that happened to be right
	// would otherwise be told so at full speed.
	if code, _, _ := a.do(a.init.TenantTokens["etl"], http.MethodGet, "/v1/jobs", nil); code != http.StatusTooManyRequests {
		t.Errorf("a valid token from the throttled address: HTTP %d, want 429", code)
	}
	clock.advance(10 * time.Second)
	if code, _, _ := a.do(a.init.TenantTokens["etl"], http.MethodGet, "/v1/jobs", nil); code != http.StatusOK {
		t.Errorf("after the budget refilled: HTTP %d", code)
	}
	if code, _, _ := a.do("guess", http.MethodGet, "/v1/jobs", nil); code != http.StatusUnauthorized {
		t.Errorf("one more guess: HTTP %d, want 401", code)
	}
	if code, _, _ := a.do("guess", http.MethodGet, "/v1/jobs", nil); code != http.StatusTooManyRequests {
		t.Errorf("and the next: HTTP %d, want 429", code)
	}
}

// TestStreamAndBodyLimits: a token's event streams and a submission's
// size are bounded.
func TestStreamAndBodyLimits(t *testing.T) {
	a := startAPI(t, nil, func(cfg *CoordinatorConfig) {
		cfg.Limits.StreamsPerToken, cfg.Limits.RequestBody = 1, 1024
	}, nil)
	admin := a.init.AdminToken
	req, _ := http.NewRequest(http.MethodGet, a.coord.APIURL()+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := a.hc.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the first stream: HTTP %d", resp.StatusCode)
	}
	if code, b, h := a.do(admin, http.MethodGet, "/v1/events", nil); code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Errorf("a second stream: HTTP %d %s", code, b)
	}
	big := `{"spec": "` + strings.Repeat("x", 2048) + `"}`
	if code, b, _ := a.do(admin, http.MethodPost, "/v1/jobs", strings.NewReader(big)); code != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "limits.request_body") {
		t.Errorf("a submission over limits.request_body: HTTP %d %s", code, b)
	}
}

// TestJobsPerTenant: a tenant's jobs in flight are those being admitted
// and those the core runs.
func TestJobsPerTenant(t *testing.T) {
	a := newAuthz(nil)
	done1, ok := a.startJob("etl", 2, 0)
	if !ok {
		t.Fatal("first")
	}
	done2, ok := a.startJob("etl", 2, 0)
	if !ok {
		t.Fatal("second")
	}
	if _, ok := a.startJob("etl", 2, 0); ok {
		t.Error("a third job in flight was admitted past the limit of 2")
	}
	if d, ok := a.startJob("bi", 2, 0); !ok {
		t.Error("another tenant was refused")
	} else {
		d()
	}
	done1() // refused: no longer in flight
	done2() // admitted: the core counts it now
	d3, ok := a.startJob("etl", 2, 1)
	if !ok {
		t.Fatal("a refused admission still counts")
	}
	if _, ok := a.startJob("etl", 2, 1); ok {
		t.Error("a running job does not count")
	}
	d3()
	if _, ok := a.startJob("etl", 2, 1); !ok {
		t.Error("an ended admission still counts")
	}
}

// TestModuleUploads: uploads are content-addressed and bounded by size,
// count, bytes and concurrency per tenant; a deleted module frees its
// room.
func TestModuleUploads(t *testing.T) {
	a := startAPI(t, []string{"etl", "bi"}, func(cfg *CoordinatorConfig) {
		cfg.Limits.ModuleSize, cfg.Limits.ModulesPerTenant, cfg.Limits.ModuleBytesPerTenant = 2048, 3, 3100
		cfg.Limits.UploadsPerTenant = 1
	}, nil)
	etl, bi := a.init.TenantTokens["etl"], a.init.TenantTokens["bi"]
	module := func(n int, fill byte) []byte {
		return append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Repeat([]byte{fill}, n-8)...)
	}
	put := func(token string, b []byte, chunked bool) (int, string) {
		var body io.Reader = bytes.NewReader(b)
		if chunked {
			body = io.MultiReader(body) // no length: sent chunked
		}
		code, resp, _ := a.do(token, http.MethodPut, "/v1/modules", body)
		return code, string(resp)
	}
	m1 := module(1000, 1)
	code, resp := put(etl, m1, false)
	if code != http.StatusOK || !strings.Contains(resp, HashToken(string(m1))) {
		t.Fatalf("upload: HTTP %d %s", code, resp)
	}
	if code, resp := put(etl, m1, true); code != http.StatusOK {
		t.Errorf("the same bytes again: HTTP %d %s", code, resp)
	}
	for _, chunked := range []bool{false, true} {
		if code, resp := put(etl, module(4096, 2), chunked); code != http.StatusRequestEntityTooLarge || !strings.Contains(resp, "limits.module_size") {
			t.Errorf("a module over module_size (chunked %v): HTTP %d %s", chunked, code, resp)
		}
	}
	if code, resp := put(etl, []byte("hello, world"), false); code != http.StatusBadRequest {
		t.Errorf("not wasm: HTTP %d %s", code, resp)
	}
	if code, resp := put(etl, module(1500, 3), true); code != http.StatusOK {
		t.Fatalf("a second module: HTTP %d %s", code, resp)
	}
	// 2,500 of 3,100 bytes used.
	for _, chunked := range []bool{false, true} {
		if code, resp := put(etl, module(700, 4), chunked); code != http.StatusRequestEntityTooLarge || !strings.Contains(resp, "module_bytes_per_tenant") {
			t.Errorf("past module_bytes_per_tenant (chunked %v): HTTP %d %s", chunked, code, resp)
		}
	}
	if code, _ := put(bi, module(1500, 4), false); code != http.StatusOK {
		t.Errorf("another tenant has its own room: HTTP %d", code)
	}
	if code, resp := put(etl, module(100, 5), false); code != http.StatusOK {
		t.Fatalf("a third module: HTTP %d %s", code, resp)
	}
	if code, resp := put(etl, module(100, 6), false); code != http.StatusRequestEntityTooLarge || !strings.Contains(resp, "modules_per_tenant") {
		t.Errorf("a fourth module: HTTP %d %s", code, resp)
	}
	h1 := HashToken(string(m1))
	if code, b, _ := a.do(bi, http.MethodDelete, "/v1/modules/"+h1, nil); code != http.StatusNotFound {
		t.Errorf("deleting another tenant's module: HTTP %d %s", code, b)
	}
	if code, b, _ := a.do(etl, http.MethodDelete, "/v1/modules/"+h1, nil); code != http.StatusOK {
		t.Fatalf("delete: HTTP %d %s", code, b)
	}
	if _, err := os.Stat(filepath.Join(a.coord.modulesDir, h1+".wasm")); !os.IsNotExist(err) {
		t.Errorf("the deleted module's file: %v", err)
	}
	if code, resp := put(etl, module(100, 6), false); code != http.StatusOK {
		t.Errorf("after a delete: HTTP %d %s", code, resp)
	}
	_, b, _ := a.do(etl, http.MethodGet, "/v1/modules", nil)
	var list struct{ Modules []api.ModuleInfo }
	json.Unmarshal(b, &list)
	if len(list.Modules) != 3 {
		t.Errorf("etl lists %d modules: %s", len(list.Modules), b)
	}
	// One upload of etl in progress (held here): the next is 429.
	release, ok := a.coord.limits.StartUpload("etl")
	if !ok {
		t.Fatal("no upload slot")
	}
	var h http.Header
	code, b, h = a.do(etl, http.MethodPut, "/v1/modules", bytes.NewReader(m1))
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(string(b), "uploads_per_tenant") {
		t.Errorf("an upload past uploads_per_tenant: HTTP %d %s", code, b)
	}
	release()
}

// TestUploadStreams: a module goes to disk through a small buffer; the
// coordinator does not hold it. While 256 MiB from a generator are
// uploaded, the heap of the whole process (client included) grows by far
// less than the module.
func TestUploadStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 256 MiB")
	}
	a := startAPI(t, []string{"etl"}, func(cfg *CoordinatorConfig) {
		cfg.Limits.ModuleSize, cfg.Limits.ModuleBytesPerTenant = 512<<20, 1<<30
	}, nil)
	const size = 256 << 20
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	peak := base
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
	}()
	code, b, _ := a.do(a.init.TenantTokens["etl"], http.MethodPut, "/v1/modules", io.MultiReader(strings.NewReader("\x00asm\x01\x00\x00\x00"), io.LimitReader(zeros{}, size-8)))
	close(stop)
	<-sampled
	if code != http.StatusOK {
		t.Fatalf("HTTP %d %s", code, b)
	}
	grew := int64(peak) - int64(base)
	t.Logf("during a %d MiB upload the heap grew by %.1f MiB at most (client, TLS, HTTP/2 and server)", size>>20, float64(grew)/(1<<20))
	if grew > 32<<20 {
		t.Errorf("a %d MiB upload grew the heap by %d MiB: the module is held in memory", size>>20, grew>>20)
	}
	var res api.ModuleInfo
	json.Unmarshal(b, &res)
	fi, err := os.Stat(filepath.Join(a.coord.modulesDir, res.Hash+".wasm"))
	if err != nil || fi.Size() != size || res.Size != size {
		t.Errorf("stored %+v: %v", res, err)
	}
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestSubmitPastLimits: a submission past a spec limit is a 400 naming
// the limit, before any module is read or anything planned.
func TestSubmitPastLimits(t *testing.T) {
	a := startAPI(t, []string{"etl"}, nil, nil)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "t.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644)
	req := api.SubmitRequest{
		Spec:    "name = \"big\"\n[modules.t]\npath = \"t.wasm\"\n[source]\ngenerate = 10\n[[steps]]\nmap = \"t.f\"\n[sink]\ntext = \"-\"\n",
		File:    filepath.Join(dir, "job.toml"),
		Conf:    map[string]string{"partitions": "100000"},
		Modules: map[string]string{"t": strings.Repeat("0", 64)},
	}
	body, _ := json.Marshal(req)
	start := time.Now()
	code, b, _ := a.do(a.init.TenantTokens["etl"], http.MethodPost, "/v1/jobs", bytes.NewReader(body))
	if code != http.StatusBadRequest || !strings.Contains(string(b), "limits.partitions") {
		t.Errorf("100,000 partitions: HTTP %d %s", code, b)
	}
	t.Logf("refused in %s", time.Since(start))
}

// TestTemporariesRemoved: files of writes a crash interrupted are
// deleted when the coordinator starts.
func TestTemporariesRemoved(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{".upload-123", ".tmp-9", "keep.wasm"} {
		os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644)
	}
	newModuleStore(dir, DefaultLimits())
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "keep.wasm" {
		t.Errorf("left %v", entries)
	}
}

// TestAdminSubmitsForKnownTenants: the admin submits for "default" or a
// tenant of the config; any other name is refused with the ones there are.
func TestAdminSubmitsForKnownTenants(t *testing.T) {
	a := startAPI(t, []string{"etl"}, nil, nil)
	req := api.SubmitRequest{
		Spec:    "name = \"x\"\n[modules.t]\npath = \"t.wasm\"\n[source]\ngenerate = 10\n[[steps]]\nmap = \"t.f\"\n[sink]\ntext = \"-\"\n",
		File:    filepath.Join(t.TempDir(), "job.toml"),
		Modules: map[string]string{"t": strings.Repeat("0", 64)},
		Tenant:  "etll",
	}
	body, _ := json.Marshal(req)
	code, b, _ := a.do(a.init.AdminToken, http.MethodPost, "/v1/jobs", bytes.NewReader(body))
	if code != http.StatusBadRequest || !strings.Contains(string(b), `no tenant \"etll\"`) || !strings.Contains(string(b), "etl") {
		t.Errorf("admin submitting for tenant etll: HTTP %d %s", code, b)
	}
}

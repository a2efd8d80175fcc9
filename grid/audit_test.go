package grid

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/internal/tokens"
)

// TestAuditLog: changes and refusals are logged as JSON lines, with who,
// what and how it ended; reads that succeed are not; no secret is.
func TestAuditLog(t *testing.T) {
	clock := newFakeClock()
	a := startAPI(t, []string{"etl"}, func(cfg *CoordinatorConfig) {
		cfg.Limits.RequestsPerSecond, cfg.Limits.RequestBurst = 1, 3
	}, func(c *Coordinator) {
		c.limits = newAPILimits(c.lim, clock.now)
		c.audit = newAuditLog(c.cfg.Audit.withDefaults(c.cfg.StateDir), clock.now)
	})
	admin, etl := a.init.AdminToken, a.init.TenantTokens["etl"]
	read := a.createToken(admin, "etl", api.RoleRead)
	clock.advance(time.Minute)
	a.do(etl, http.MethodPut, "/v1/modules", strings.NewReader("\x00asm\x01\x00\x00\x00"))
	a.do(etl, http.MethodGet, "/v1/jobs", nil) // a read that succeeds: not logged
	a.do(read.Token, http.MethodPut, "/v1/modules", strings.NewReader("\x00asm\x01\x00\x00\x00"))
	a.do("wrong", http.MethodGet, "/v1/jobs", nil)
	a.do(admin, http.MethodDelete, "/v1/tokens/"+read.ID, nil)
	a.do(etl, http.MethodGet, "/v1/jobs", nil)
	a.do(etl, http.MethodGet, "/v1/jobs", nil) // the fourth in a burst of 3: 429
	a.coord.audit.Close()
	path := filepath.Join(a.coord.cfg.StateDir, "coordinator", "audit.log")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{admin, etl, read.Token} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("the audit log holds a token")
		}
	}
	type rec struct {
		Time                                                           time.Time
		Tenant, TokenID, Role, Action, Object, Outcome, Remote, Reason string
		Status                                                         int
	}
	var recs []rec
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		var r rec
		json.Unmarshal(sc.Bytes(), &r)
		r.TokenID, _ = m["token_id"].(string)
		recs = append(recs, r)
	}
	want := []rec{
		{Action: "token.create", Role: "admin", TokenID: tokens.BootstrapID(""), Object: read.ID, Outcome: "ok", Status: 201},
		{Action: "module.upload", Role: "submit", Tenant: "etl", TokenID: tokens.BootstrapID("etl"), Object: HashToken("\x00asm\x01\x00\x00\x00"), Outcome: "ok", Status: 200},
		{Action: "module.upload", Role: "read-only", Tenant: "etl", TokenID: read.ID, Outcome: "refused", Status: 403},
		{Action: "job.list", Outcome: "refused", Status: 401},
		{Action: "token.revoke", Role: "admin", TokenID: tokens.BootstrapID(""), Object: read.ID, Outcome: "ok", Status: 200},
		{Action: "job.list", Role: "submit", Tenant: "etl", TokenID: tokens.BootstrapID("etl"), Outcome: "refused", Status: 429},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d:\n%s", len(recs), len(want), b)
	}
	for i, w := range want {
		g := recs[i]
		if g.Action != w.Action || g.Role != w.Role || g.Tenant != w.Tenant || g.TokenID != w.TokenID || g.Object != w.Object || g.Outcome != w.Outcome || g.Status != w.Status {
			t.Errorf("record %d: %+v\nwant %+v", i, g, w)
		}
		if g.Remote == "" || g.Time.IsZero() {
			t.Errorf("record %d has no remote address or time: %+v", i, g)
		}
		if g.Outcome == "refused" && g.Reason == "" {
			t.Errorf("record %d says no reason: %+v", i, g)
		}
	}
	if !slices.ContainsFunc(recs, func(r rec) bool { return r.Time.Equal(clock.now()) }) {
		t.Error("the records' times are not the coordinator's clock")
	}
}

// FuzzAuditConfig: the [audit] table decodes, validates and fills its
// defaults without panicking. (Its rotated files' names are
// internal/audit's FuzzBackupName.)
func FuzzAuditConfig(f *testing.F) {
	f.Add("path = \"a.log\"\nmax_size = \"1MiB\"\nmax_backups = 3\nmax_age = \"1h\"\n")
	f.Add("disable = true\n")
	f.Add("max_size = \"-1B\"\n")
	f.Add("path = \"dir/\"\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, table string) {
		path := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(path, []byte("[audit]\n"+table), 0o600); err != nil {
			t.Skip()
		}
		var c CoordinatorConfig
		if err := decodeConfig(path, &c); err == nil {
			if len(c.Audit.validate()) == 0 {
				d := c.Audit.withDefaults("state")
				if d.Path == "" || d.MaxSize <= 0 || d.MaxBackups <= 0 || d.MaxAge <= 0 {
					t.Fatalf("defaults left a zero: %+v", d)
				}
			}
		}
	})
}

package grid

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/internal/raftlog"
)

// TestServerChangesRefused: membership changes and backups are the
// admin's; the last server is never removed, a member never added twice,
// and a backup is whole (its length is announced) and audited.
func TestServerChangesRefused(t *testing.T) {
	a := startAPI(t, []string{"etl"}, nil, nil)
	admin, tenant := a.init.AdminToken, a.init.TenantTokens["etl"]
	add := func(tok string, req api.AddServerRequest) (int, string) {
		body, _ := json.Marshal(req)
		code, b, _ := a.do(tok, http.MethodPost, "/v1/servers", bytes.NewReader(body))
		return code, string(b)
	}
	if code, b := add(tenant, api.AddServerRequest{ID: 2, Name: "c2", RaftAddr: "127.0.0.1:1"}); code != http.StatusForbidden {
		t.Errorf("a tenant adds a server: HTTP %d %s", code, b)
	}
	if code, b := add(admin, api.AddServerRequest{Name: "c2", RaftAddr: "127.0.0.1:1"}); code != http.StatusBadRequest || !strings.Contains(b, "needs an id") {
		t.Errorf("a server without an id: HTTP %d %s", code, b)
	}
	if code, b := add(admin, api.AddServerRequest{ID: 2, Name: "c2", RaftAddr: "no port"}); code != http.StatusBadRequest {
		t.Errorf("a server without a port: HTTP %d %s", code, b)
	}
	if code, b := add(admin, api.AddServerRequest{ID: 9, Name: "coordinator", RaftAddr: "127.0.0.1:1"}); code != http.StatusConflict || !strings.Contains(b, "is a member already") {
		t.Errorf("a member's name again: HTTP %d %s", code, b)
	}
	code, b, _ := a.do(admin, http.MethodDelete, "/v1/servers/coordinator", nil)
	if code != http.StatusConflict || !strings.Contains(string(b), "the last server") {
		t.Errorf("removing the last server: HTTP %d %s", code, b)
	}
	code, b, _ = a.do(admin, http.MethodDelete, "/v1/servers/nobody", nil)
	if code != http.StatusNotFound || !strings.Contains(string(b), "coordinator") {
		t.Errorf("removing no member: HTTP %d %s", code, b)
	}
	if code, _, _ := a.do(tenant, http.MethodGet, "/v1/backup", nil); code != http.StatusForbidden {
		t.Errorf("a tenant's backup: HTTP %d", code)
	}
	code, b, h := a.do(admin, http.MethodGet, "/v1/backup", nil)
	if code != http.StatusOK || h.Get(api.BackupServerHeader) != "coordinator" || h.Get("Content-Length") != strconv.Itoa(len(b)) || len(b) == 0 {
		t.Fatalf("backup: HTTP %d, %d bytes, headers %v", code, len(b), h)
	}
	audit, err := os.ReadFile(filepath.Join(a.coord.cfg.StateDir, "coordinator", "audit.log"))
	if err != nil || !bytes.Contains(audit, []byte(`"action":"server.backup"`)) {
		t.Errorf("the backup is not in the audit log (%v):\n%s", err, audit)
	}
	if entries, _ := os.ReadDir(a.coord.cfg.StateDir); len(entries) > 0 {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".backup-") {
				t.Errorf("the backup's temporary file %s stays", e.Name())
			}
		}
	}
}

func TestQuorumLost(t *testing.T) {
	p := func(id uint64) raftlog.Peer { return raftlog.Peer{ID: id, Name: fmt.Sprintf("c%d", id)} }
	three := []raftlog.Peer{p(1), p(2), p(3)}
	for _, c := range []struct {
		members, unreachable []raftlog.Peer
		lost                 bool
	}{
		{three, nil, false},
		{three, []raftlog.Peer{p(3)}, false},
		{three, []raftlog.Peer{p(2), p(3)}, true},
		{[]raftlog.Peer{p(1)}, nil, false},
		{[]raftlog.Peer{p(1), p(2), p(3), p(4), p(5)}, []raftlog.Peer{p(4), p(5)}, false},
		{[]raftlog.Peer{p(1), p(2), p(3), p(4), p(5)}, []raftlog.Peer{p(3), p(4), p(5)}, true},
	} {
		st := raftlog.Status{ID: 1, Name: "c1", Members: c.members, Unreachable: c.unreachable}
		if got := quorumLost(st); got != c.lost {
			t.Errorf("%d members, %d unreachable: quorumLost = %v", len(c.members), len(c.unreachable), got)
		}
		if c.lost {
			msg := quorumMessage(st)
			for _, u := range c.unreachable {
				if !strings.Contains(msg, u.Name) {
					t.Errorf("%q does not name %s", msg, u.Name)
				}
			}
		}
	}
}

// TestExplainState: each refusal of the state dir says what to change in
// the coordinator's config, and keeps the log's error.
func TestExplainState(t *testing.T) {
	cfg := CoordinatorConfig{Name: "c1", StateDir: "/srv/c1", ServerID: 1, TLS: TLSFiles{CA: "/etc/grid/ca.pem"}}
	for _, c := range []struct {
		err  error
		want []string
	}{
		{&raftlog.CorruptError{Path: "/srv/c1/raft/raft.db", Err: errors.New("bad page")}, []string{"/srv/c1/raft/raft.db", "Restore the file from a backup", "grid servers remove c1"}},
		{fmt.Errorf("x: %w", raftlog.ErrOtherCluster), []string{"/srv/c1", "another cluster", "/etc/grid/ca.pem", "Point state_dir"}},
		{fmt.Errorf("x: %w", raftlog.ErrOtherServer), []string{"server_id 1", "fix server_id"}},
		{fmt.Errorf("x: %w", raftlog.ErrMembers), []string{"[[servers]]", "grid servers add"}},
	} {
		got := explainState(c.err, cfg)
		if !errors.Is(got, c.err) && !errors.Is(got, errors.Unwrap(c.err)) {
			t.Errorf("%v does not wrap %v", got, c.err)
		}
		for _, w := range c.want {
			if !strings.Contains(got.Error(), w) {
				t.Errorf("%q does not say %q", got, w)
			}
		}
	}
}

package grid

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func TestTokenStore(t *testing.T) {
	clock := newFakeClock()
	path := filepath.Join(t.TempDir(), "coordinator", "tokens.json")
	admin, etl := "admin-secret", "etl-secret"
	boot := bootstrapTokens(CoordinatorConfig{AdminTokenSHA256: HashToken(admin), Tenants: []TenantConfig{{Name: "etl", TokenSHA256: strings.ToUpper(HashToken(etl))}}})
	s, err := openTokenStore(path, boot, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := s.lookup(admin); !ok || p.Role != api.RoleAdmin || p.Tenant != "" {
		t.Errorf("the bootstrap admin token: %+v %v", p, ok)
	}
	if p, ok := s.lookup(etl); !ok || p.Role != api.RoleSubmit || p.Tenant != "etl" {
		t.Errorf("a tenant's bootstrap token (an upper-case hash in the config): %+v %v", p, ok)
	}
	if _, ok := s.lookup("nope"); ok {
		t.Error("a wrong token was found")
	}
	nt, err := s.create("etl", api.RoleRead)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(nt.Token, "wgt_") || nt.Role != api.RoleRead || nt.Tenant != "etl" || !nt.Created.Equal(clock.now()) {
		t.Errorf("created %+v", nt)
	}
	if p, ok := s.lookup(nt.Token); !ok || p.ID != nt.ID {
		t.Errorf("the new token: %+v %v", p, ok)
	}
	b, _ := os.ReadFile(path)
	if bytes.Contains(b, []byte(nt.Token)) || bytes.Contains(b, []byte(admin)) || !bytes.Contains(b, []byte(HashToken(nt.Token))) {
		t.Errorf("the store file holds a secret, or not the hash:\n%s", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("the store file has mode %v", fi.Mode().Perm())
	}
	clock.advance(time.Minute)
	if _, err := s.revoke(nt.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.lookup(nt.Token); ok {
		t.Error("a revoked token still works")
	}
	if _, err := s.revoke(bootstrapID("")); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.lookup(admin); ok {
		t.Error("the revoked bootstrap admin token still works")
	}
	rot, err := s.rotate(bootstrapID("etl"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.lookup(etl); ok {
		t.Error("a rotated token still works")
	}
	if p, ok := s.lookup(rot.Token); !ok || p.Tenant != "etl" || p.Role != api.RoleSubmit {
		t.Errorf("the rotated token: %+v %v", p, ok)
	}
	if _, err := s.rotate(nt.ID); err != errRevoked {
		t.Errorf("rotating a revoked token: %v", err)
	}
	if _, err := s.revoke("tok-none"); err != errNoToken {
		t.Errorf("revoking a token that does not exist: %v", err)
	}
	want := s.list()

	// Reopened with the same config: the same tokens, revocations kept.
	s2, err := openTokenStore(path, boot, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.list(); !reflect.DeepEqual(got, want) {
		t.Errorf("after reopening:\n%+v\nwant\n%+v", got, want)
	}
	if _, ok := s2.lookup(admin); ok {
		t.Error("a revoked bootstrap token came back on restart")
	}
	// A new admin hash in the config is a new token; a tenant gone from
	// the config loses its bootstrap token.
	clock.advance(time.Minute)
	boot3 := bootstrapTokens(CoordinatorConfig{AdminTokenSHA256: HashToken("admin-2")})
	s3, err := openTokenStore(path, boot3, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s3.lookup("admin-2"); !ok {
		t.Error("the config's new admin token does not work")
	}
	for _, ti := range s3.list() {
		if ti.ID == bootstrapID("etl") && ti.Revoked == nil {
			t.Error("the bootstrap token of a tenant removed from the config is live")
		}
	}
	if _, ok := s3.lookup(rot.Token); !ok {
		t.Error("a token created at run time was lost")
	}

	// A damaged file stops the coordinator rather than forgetting
	// revocations.
	os.WriteFile(path, []byte(`{"version":1,"tokens":[{"id":"x","role":"king","sha256":"00"}]}`), 0o600)
	if _, err := openTokenStore(path, boot, clock.now); err == nil || !strings.Contains(err.Error(), "king") {
		t.Errorf("a damaged store: %v", err)
	}
}

// FuzzTokenFile: the token store's decoder never panics, refuses what
// its checks refuse, and what it accepts survives a round trip.
func FuzzTokenFile(f *testing.F) {
	f.Add([]byte(`{"version":1,"tokens":[]}`))
	f.Add([]byte(`{"version":1,"tokens":[{"id":"bootstrap.admin","role":"admin","created":"2026-01-02T03:04:05Z","bootstrap":true,"sha256":"` + HashToken("a") + `"}]}`))
	f.Add([]byte(`{"version":1,"tokens":[{"id":"tok-1","tenant":"etl","role":"read-only","created":"2026-01-02T03:04:05Z","revoked":"2026-01-03T00:00:00Z","sha256":"` + HashToken("b") + `"}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tf, err := decodeTokenFile(b)
		if err != nil {
			return
		}
		ids := map[string]bool{}
		for _, r := range tf.Tokens {
			if r.check() != nil || ids[r.ID] {
				t.Fatalf("accepted a bad record %+v", r)
			}
			ids[r.ID] = true
		}
		out, err := json.Marshal(tf)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeTokenFile(out)
		if err != nil {
			t.Fatalf("re-encoded file refused: %v\n%s", err, out)
		}
		if len(again.Tokens) != len(tf.Tokens) {
			t.Fatalf("round trip: %d tokens, then %d", len(tf.Tokens), len(again.Tokens))
		}
		for i := range tf.Tokens {
			a, b := tf.Tokens[i], again.Tokens[i]
			if a.ID != b.ID || a.SHA256 != b.SHA256 || a.Role != b.Role || a.Tenant != b.Tenant || !a.Created.Equal(b.Created) || (a.Revoked == nil) != (b.Revoked == nil) {
				t.Fatalf("round trip changed %+v into %+v", a, b)
			}
		}
	})
}

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

// TestTokenStore: the store changes only through commands, which every
// server applies alike; its hashes, never its tokens, are what a command
// and a snapshot hold; the config's bootstrap tokens layer over the
// replicated records.
func TestTokenStore(t *testing.T) {
	clock := newFakeClock()
	admin, etl := "admin-secret", "etl-secret"
	boot := bootstrapTokens(CoordinatorConfig{AdminTokenSHA256: HashToken(admin), Tenants: []TenantConfig{{Name: "etl", TokenSHA256: strings.ToUpper(HashToken(etl))}}})
	s := newTokenStore(boot, clock.now)
	// A follower applies the same commands.
	f := newTokenStore(boot, clock.now)
	var log [][]byte
	apply := func(cmd tokenCommand) {
		t.Helper()
		b, err := gridCommand{Token: &cmd}.encode()
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, b)
		for _, st := range []*tokenStore{s, f} {
			e, err := decodeEntry(b)
			if err != nil || e.grid == nil || e.grid.Token == nil {
				t.Fatalf("decode %s: %v", b, err)
			}
			st.apply(*e.grid.Token)
		}
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
	cmd, nt, err := s.newTokenCommand("etl", api.RoleRead)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.lookup(nt.Token); ok {
		t.Error("a token works before its command is applied")
	}
	apply(cmd)
	if !strings.HasPrefix(nt.Token, "wgt_") || nt.Role != api.RoleRead || nt.Tenant != "etl" || !nt.Created.Equal(clock.now()) {
		t.Errorf("created %+v", nt)
	}
	for _, st := range []*tokenStore{s, f} {
		if p, ok := st.lookup(nt.Token); !ok || p.ID != nt.ID {
			t.Errorf("the new token: %+v %v", p, ok)
		}
	}
	clock.advance(time.Minute)
	rev, err := s.revokeCommand(nt.ID)
	if err != nil || rev == nil {
		t.Fatal(rev, err)
	}
	apply(tokenCommand{Revoke: rev})
	if again, err := s.revokeCommand(nt.ID); again != nil || err != nil {
		t.Errorf("revoking a revoked token again: %v %v", again, err)
	}
	rev, _ = s.revokeCommand(bootstrapID(""))
	apply(tokenCommand{Revoke: rev})
	for _, st := range []*tokenStore{s, f} {
		if _, ok := st.lookup(nt.Token); ok {
			t.Error("a revoked token still works")
		}
		if _, ok := st.lookup(admin); ok {
			t.Error("the revoked bootstrap admin token still works")
		}
	}
	// Rotation: one command creates the new token and revokes the old.
	old, _ := s.find(bootstrapID("etl"))
	rot, nrot, err := s.newTokenCommand(old.Tenant, old.Role)
	if err != nil {
		t.Fatal(err)
	}
	rot.Revoke, _ = s.revokeCommand(old.ID)
	apply(rot)
	if _, ok := f.lookup(etl); ok {
		t.Error("a rotated token still works")
	}
	if p, ok := f.lookup(nrot.Token); !ok || p.Tenant != "etl" || p.Role != api.RoleSubmit {
		t.Errorf("the rotated token: %+v %v", p, ok)
	}
	if _, err := s.revokeCommand("tok-none"); err != errNoToken {
		t.Errorf("revoking a token that does not exist: %v", err)
	}
	if !reflect.DeepEqual(s.list(), f.list()) {
		t.Errorf("leader and follower differ:\n%+v\n%+v", s.list(), f.list())
	}
	for _, b := range log {
		for _, secret := range []string{nt.Token, nrot.Token, admin, etl} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("a log entry holds a token: %s", b)
			}
		}
	}
	if !bytes.Contains(log[0], []byte(HashToken(nt.Token))) {
		t.Errorf("the create entry does not hold the hash: %s", log[0])
	}

	// A server restored from the records (a snapshot) knows the same
	// tokens, revocations included.
	want := s.list()
	r := newTokenStore(boot, clock.now)
	r.restore(s.snapshot())
	if got := r.list(); !reflect.DeepEqual(got, want) {
		t.Errorf("after a restore:\n%+v\nwant\n%+v", got, want)
	}
	if _, ok := r.lookup(admin); ok {
		t.Error("a revoked bootstrap token came back after a restore")
	}
	// A new admin hash in the config is a new token; a tenant gone from
	// the config loses its bootstrap token.
	r3 := newTokenStore(bootstrapTokens(CoordinatorConfig{AdminTokenSHA256: HashToken("admin-2")}), clock.now)
	r3.restore(s.snapshot())
	if _, ok := r3.lookup("admin-2"); !ok {
		t.Error("the config's new admin token does not work")
	}
	if _, ok := r3.lookup(etl); ok {
		t.Error("the bootstrap token of a tenant removed from the config works")
	}
	if _, ok := r3.lookup(nrot.Token); !ok {
		t.Error("a token created at run time was lost")
	}
	// An import of an earlier release's file adds what is not there, and
	// nothing twice.
	legacy := tokenRecord{TokenInfo: api.TokenInfo{ID: "tok-legacy", Tenant: "etl", Role: api.RoleRead, Created: clock.now()}, SHA256: HashToken("legacy")}
	apply(tokenCommand{Import: []tokenRecord{legacy, legacy}})
	apply(tokenCommand{Import: []tokenRecord{legacy}})
	if n := len(f.snapshot()); n != len(s.snapshot()) || n != 5 {
		t.Errorf("%d records after imports", n)
	}
	if _, ok := f.lookup("legacy"); !ok {
		t.Error("an imported token does not work")
	}
}

func TestLegacyTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	if recs, err := legacyTokens(path); recs != nil || err != nil {
		t.Errorf("no file: %v %v", recs, err)
	}
	os.WriteFile(path, []byte(`{"version":1,"tokens":[{"id":"x","role":"king","sha256":"00"}]}`), 0o600)
	if _, err := legacyTokens(path); err == nil || !strings.Contains(err.Error(), "king") {
		t.Errorf("a damaged file: %v", err)
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

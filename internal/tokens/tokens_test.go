package tokens

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
	boot := []Record{Bootstrap("", Hash(admin)), Bootstrap("etl", strings.ToUpper(Hash(etl)))}
	s := NewStore(boot, clock.now)
	// A follower applies the same commands.
	f := NewStore(boot, clock.now)
	var log [][]byte
	apply := func(cmd Command) {
		t.Helper()
		if err := cmd.Check(); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, b)
		for _, st := range []*Store{s, f} {
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			var e Command
			if err := dec.Decode(&e); err != nil || e.Check() != nil {
				t.Fatalf("decode %s: %v", b, err)
			}
			st.Apply(e)
		}
	}
	if p, ok := s.Lookup(admin); !ok || p.Role != api.RoleAdmin || p.Tenant != "" {
		t.Errorf("the bootstrap admin token: %+v %v", p, ok)
	}
	if p, ok := s.Lookup(etl); !ok || p.Role != api.RoleSubmit || p.Tenant != "etl" {
		t.Errorf("a tenant's bootstrap token (an upper-case hash in the config): %+v %v", p, ok)
	}
	if _, ok := s.Lookup("nope"); ok {
		t.Error("a wrong token was found")
	}
	cmd, nt, err := s.CreateCommand("etl", api.RoleRead)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Lookup(nt.Token); ok {
		t.Error("a token works before its command is applied")
	}
	apply(cmd)
	if !strings.HasPrefix(nt.Token, "wgt_") || nt.Role != api.RoleRead || nt.Tenant != "etl" || !nt.Created.Equal(clock.now()) {
		t.Errorf("created %+v", nt)
	}
	for _, st := range []*Store{s, f} {
		if p, ok := st.Lookup(nt.Token); !ok || p.ID != nt.ID {
			t.Errorf("the new token: %+v %v", p, ok)
		}
	}
	clock.advance(time.Minute)
	rev, err := s.RevokeCommand(nt.ID)
	if err != nil || rev == nil {
		t.Fatal(rev, err)
	}
	apply(Command{Revoke: rev})
	if again, err := s.RevokeCommand(nt.ID); again != nil || err != nil {
		t.Errorf("revoking a revoked token again: %v %v", again, err)
	}
	rev, _ = s.RevokeCommand(BootstrapID(""))
	apply(Command{Revoke: rev})
	for _, st := range []*Store{s, f} {
		if _, ok := st.Lookup(nt.Token); ok {
			t.Error("a revoked token still works")
		}
		if _, ok := st.Lookup(admin); ok {
			t.Error("the revoked bootstrap admin token still works")
		}
	}
	// Rotation: one command creates the new token and revokes the old.
	old, _ := s.Find(BootstrapID("etl"))
	rot, nrot, err := s.CreateCommand(old.Tenant, old.Role)
	if err != nil {
		t.Fatal(err)
	}
	rot.Revoke, _ = s.RevokeCommand(old.ID)
	apply(rot)
	if _, ok := f.Lookup(etl); ok {
		t.Error("a rotated token still works")
	}
	if p, ok := f.Lookup(nrot.Token); !ok || p.Tenant != "etl" || p.Role != api.RoleSubmit {
		t.Errorf("the rotated token: %+v %v", p, ok)
	}
	if _, err := s.RevokeCommand("tok-none"); err != ErrNoToken {
		t.Errorf("revoking a token that does not exist: %v", err)
	}
	if !reflect.DeepEqual(s.List(), f.List()) {
		t.Errorf("leader and follower differ:\n%+v\n%+v", s.List(), f.List())
	}
	for _, b := range log {
		for _, secret := range []string{nt.Token, nrot.Token, admin, etl} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("a log entry holds a token: %s", b)
			}
		}
	}
	if !bytes.Contains(log[0], []byte(Hash(nt.Token))) {
		t.Errorf("the create entry does not hold the hash: %s", log[0])
	}

	// A server restored from the records (a snapshot) knows the same
	// tokens, revocations included.
	want := s.List()
	r := NewStore(boot, clock.now)
	r.Restore(s.Snapshot())
	if got := r.List(); !reflect.DeepEqual(got, want) {
		t.Errorf("after a restore:\n%+v\nwant\n%+v", got, want)
	}
	if _, ok := r.Lookup(admin); ok {
		t.Error("a revoked bootstrap token came back after a restore")
	}
	// A new admin hash in the config is a new token; a tenant gone from
	// the config loses its bootstrap token.
	r3 := NewStore([]Record{Bootstrap("", Hash("admin-2"))}, clock.now)
	r3.Restore(s.Snapshot())
	if _, ok := r3.Lookup("admin-2"); !ok {
		t.Error("the config's new admin token does not work")
	}
	if _, ok := r3.Lookup(etl); ok {
		t.Error("the bootstrap token of a tenant removed from the config works")
	}
	if _, ok := r3.Lookup(nrot.Token); !ok {
		t.Error("a token created at run time was lost")
	}
	// An import of an earlier release's file adds what is not there, and
	// nothing twice.
	legacy := Record{TokenInfo: api.TokenInfo{ID: "tok-legacy", Tenant: "etl", Role: api.RoleRead, Created: clock.now()}, SHA256: Hash("legacy")}
	apply(Command{Import: []Record{legacy, legacy}})
	apply(Command{Import: []Record{legacy}})
	if n := len(f.Snapshot()); n != len(s.Snapshot()) || n != 5 {
		t.Errorf("%d records after imports", n)
	}
	if _, ok := f.Lookup("legacy"); !ok {
		t.Error("an imported token does not work")
	}
}

func TestLegacyTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	if recs, err := Legacy(path); recs != nil || err != nil {
		t.Errorf("no file: %v %v", recs, err)
	}
	os.WriteFile(path, []byte(`{"version":1,"tokens":[{"id":"x","role":"king","sha256":"00"}]}`), 0o600)
	if _, err := Legacy(path); err == nil || !strings.Contains(err.Error(), "king") {
		t.Errorf("a damaged file: %v", err)
	}
}

// FuzzTokenFile: the legacy token file's decoder never panics, refuses what
// its checks refuse, and what it accepts survives a round trip.
func FuzzTokenFile(f *testing.F) {
	f.Add([]byte(`{"version":1,"tokens":[]}`))
	f.Add([]byte(`{"version":1,"tokens":[{"id":"bootstrap.admin","role":"admin","created":"2026-01-02T03:04:05Z","bootstrap":true,"sha256":"` + Hash("a") + `"}]}`))
	f.Add([]byte(`{"version":1,"tokens":[{"id":"tok-1","tenant":"etl","role":"read-only","created":"2026-01-02T03:04:05Z","revoked":"2026-01-03T00:00:00Z","sha256":"` + Hash("b") + `"}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tf, err := decodeFile(b)
		if err != nil {
			return
		}
		ids := map[string]bool{}
		for _, r := range tf.Tokens {
			if r.Check() != nil || ids[r.ID] {
				t.Fatalf("accepted a bad record %+v", r)
			}
			ids[r.ID] = true
		}
		out, err := json.Marshal(tf)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeFile(out)
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

package grid

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/core"
	"github.com/wasmgrid/wasmgrid/internal/tokens"
)

func TestDecodeEntry(t *testing.T) {
	hash := HashToken("m")
	cb, err := core.Command{Time: time.Unix(1, 0), Tick: &struct{}{}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if e, err := decodeEntry(cb); err != nil || e.core == nil || e.core.Tick == nil || e.grid != nil {
		t.Errorf("a core command: %+v %v", e, err)
	}
	gb, err := gridCommand{Module: &moduleCommand{Stored: &moduleRef{Hash: hash, Size: 8, Tenant: "etl"}}}.encode()
	if err != nil {
		t.Fatal(err)
	}
	if e, err := decodeEntry(gb); err != nil || e.grid == nil || e.core != nil || *e.grid.Module.Stored != (moduleRef{Hash: hash, Size: 8, Tenant: "etl"}) {
		t.Errorf("a grid command: %+v %v", e, err)
	}
	for _, bad := range []string{
		`G{"v":2,"module":{"stored":{"hash":"` + hash + `","tenant":"a"}}}`,
		`G{"v":1}`,
		`G{"v":1,"module":{"stored":{"hash":"` + hash + `","tenant":"a"}},"token":{"import":[]}}`,
		`G{"v":1,"module":{"stored":{"hash":"` + hash + `","tenant":"a"},"deleted":{"hash":"` + hash + `","tenant":"a"}}}`,
		`G{"v":1,"module":{"stored":{"hash":"../../etc/passwd","tenant":"a"}}}`,
		`G{"v":1,"module":{"stored":{"hash":"` + strings.ToUpper(hash) + `","tenant":"a"}}}`,
		`G{"v":1,"module":{"stored":{"hash":"` + hash + `","size":-1,"tenant":"a"}}}`,
		`G{"v":1,"module":{"stored":{"hash":"` + hash + `","tenant":"a","bytes":"AGFzbQ=="}}}`,
		`G{"v":1,"token":{"create":{"id":"tok-1","role":"read-only","tenant":"a","sha256":"` + hash + `","revoked":"2026-01-01T00:00:00Z"}}}`,
		`G{"v":1,"token":{"create":{"id":"tok-1","role":"read-only","tenant":"a","sha256":"` + hash + `","token":"wgt_secret"}}}`,
		`G{"v":1,"token":{"revoke":{"id":"tok-1","role":"read-only","tenant":"a","sha256":"` + hash + `"}}}`,
		`G{"v":1,"token":{"create":{"id":"tok-1","role":"admin","tenant":"a","sha256":"` + hash + `"}}}`,
		`G{"v":1,"token":{}}`,
		`G{"v":1,"token":{"import":[]}} {}`,
		`G`,
		`{}`,
	} {
		if e, err := decodeEntry([]byte(bad)); err == nil {
			t.Errorf("accepted %s: %+v", bad, e)
		}
	}
}

// newMemCoordinator is a coordinator whose log is its memory, with its
// module directory in a test's temporary directory.
func newMemCoordinator(t *testing.T) *coordinator {
	t.Helper()
	c, err := newCoordinator(slog.New(slog.DiscardHandler), newMetrics(nil), make(chan taskStatus, 1), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReplicatedStateThroughTheLog: token and module commands go through
// the log (the embedded grid's memLog here), every server that applies
// them holds the same state, a snapshot carries it, and a deleted
// module's file goes when nobody owns it.
func TestReplicatedStateThroughTheLog(t *testing.T) {
	ctx := context.Background()
	leader := newMemCoordinator(t)
	var missing []string
	leader.missing = func(h string) { missing = append(missing, h) }
	// A follower applies what the leader's log carries.
	follower := newMemCoordinator(t)
	var fmissing []string
	follower.missing = func(h string) { fmissing = append(fmissing, h) }
	var entries [][]byte
	leader.log = logFunc(func(b []byte) { entries = append(entries, b); leader.Apply(0, b); follower.Apply(0, b) })

	cmd, nt, err := leader.tokens.CreateCommand("etl", api.RoleSubmit)
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.proposeGrid(ctx, gridCommand{Token: &cmd}); err != nil {
		t.Fatal(err)
	}
	cmd2, nt2, _ := leader.tokens.CreateCommand("etl", api.RoleRead)
	if err := leader.proposeGrid(ctx, gridCommand{Token: &cmd2}); err != nil {
		t.Fatal(err)
	}
	rev, _ := leader.tokens.RevokeCommand(nt2.ID)
	if err := leader.proposeGrid(ctx, gridCommand{Token: &tokens.Command{Revoke: rev}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := follower.tokens.Lookup(nt.Token); !ok {
		t.Error("the follower does not know the created token")
	}
	if _, ok := follower.tokens.Lookup(nt2.Token); ok {
		t.Error("the follower accepts the revoked token")
	}

	// Modules: the leader holds the file; the follower lacks it and asks.
	body := append([]byte("\x00asm\x01\x00\x00\x00"), make([]byte, 100)...)
	blob, err := storeBytes(leader.modules.dir, "m", body)
	if err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"etl", "web"} {
		if err := leader.proposeGrid(ctx, gridCommand{Module: &moduleCommand{Stored: &moduleRef{Hash: blob.Hash, Size: blob.Size, Tenant: tenant}}}); err != nil {
			t.Fatal(err)
		}
	}
	if len(missing) != 0 || !reflect.DeepEqual(fmissing, []string{blob.Hash, blob.Hash}) {
		t.Errorf("missing modules: the leader's %v, the follower's %v", missing, fmissing)
	}
	if !follower.modules.owned(principal{tenant: "web"}, blob.Hash) || follower.modules.owned(principal{tenant: "ops"}, blob.Hash) {
		t.Error("the follower's owners are wrong")
	}
	for _, b := range entries {
		if len(b) > 1024 {
			t.Errorf("an entry of %d bytes: the log carries records, not modules", len(b))
		}
	}

	// A snapshot restores the same state on a new server, which asks for
	// the module it lacks.
	snap, err := leader.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	fresh := newMemCoordinator(t)
	var rmissing []string
	fresh.missing = func(h string) { rmissing = append(rmissing, h) }
	if err := fresh.Restore(0, snap); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fresh.tokens.List(), leader.tokens.List()) || !reflect.DeepEqual(fresh.modules.records(), leader.modules.records()) {
		t.Errorf("restored state differs:\n%+v\n%+v", fresh.tokens.List(), fresh.modules.records())
	}
	if _, ok := fresh.tokens.Lookup(nt2.Token); ok {
		t.Error("a revoked token works on a server restored from a snapshot")
	}
	if !reflect.DeepEqual(rmissing, []string{blob.Hash}) {
		t.Errorf("the restored server asks for %v", rmissing)
	}
	// A core snapshot of an earlier release restores the core alone.
	cs, _ := leader.core.Snapshot()
	if err := newMemCoordinator(t).Restore(0, cs); err != nil {
		t.Errorf("a core snapshot: %v", err)
	}

	// Deletion: the file stays while an owner is left, and goes with the
	// last one, on every server.
	del := func(tenant string) {
		t.Helper()
		if err := leader.proposeGrid(ctx, gridCommand{Module: &moduleCommand{Deleted: &moduleRef{Hash: blob.Hash, Tenant: tenant}}}); err != nil {
			t.Fatal(err)
		}
	}
	del("etl")
	if !leader.modules.has(blob.Hash) || !leader.modules.named(blob.Hash) {
		t.Error("the module went with an owner left")
	}
	unpin := leader.modules.pin(blob.Hash)
	del("web")
	if !leader.modules.has(blob.Hash) {
		t.Error("a pinned module's file went")
	}
	unpin()
	leader.modules.sweep(map[string]bool{blob.Hash: true})
	if !leader.modules.has(blob.Hash) {
		t.Error("a module in use went")
	}
	leader.modules.sweep(nil)
	if leader.modules.has(blob.Hash) || leader.modules.named(blob.Hash) {
		t.Error("the module nobody owns stays")
	}
	if u := follower.modules.usage["web"]; u.count != 0 || u.bytes != 0 {
		t.Errorf("the follower's usage after deletion: %+v", u)
	}
}

// logFunc is a log that hands each entry to fn.
type logFunc func([]byte)

func (f logFunc) Propose(_ context.Context, b []byte) (uint64, error) { f(b); return 0, nil }

func TestModuleStoreRestoreOrphans(t *testing.T) {
	dir := t.TempDir()
	s := newModuleStore(dir, LimitsConfig{}.withDefaults())
	a, _ := storeBytes(dir, "a", []byte("\x00asm a"))
	b, _ := storeBytes(dir, "b", []byte("\x00asm b"))
	s.own("t", a.Hash, a.Size)
	s.own("t", b.Hash, b.Size)
	// A snapshot taken after a's deletion: a's file goes.
	s.restore([]moduleRecord{{Hash: b.Hash, Size: b.Size, Owners: []string{"t"}}})
	s.sweep(nil)
	if s.has(a.Hash) || !s.has(b.Hash) {
		t.Errorf("after a restore without a: a %v, b %v", s.has(a.Hash), s.has(b.Hash))
	}
	if u := s.usage["t"]; u.count != 1 || u.bytes != b.Size {
		t.Errorf("usage %+v", u)
	}
	if _, err := os.Stat(filepath.Join(dir, b.Hash+".wasm")); err != nil {
		t.Error(err)
	}
}

// FuzzDecodeEntry: the log entry decoder never panics, and what it
// accepts as a grid command survives a round trip.
func FuzzDecodeEntry(f *testing.F) {
	hash := HashToken("m")
	f.Add([]byte(`{"time":"2026-01-01T00:00:00Z","tick":{}}`))
	f.Add([]byte(`G{"v":1,"module":{"stored":{"hash":"` + hash + `","size":8,"tenant":"a"}}}`))
	f.Add([]byte(`G{"v":1,"module":{"deleted":{"hash":"` + hash + `","tenant":"a"}}}`))
	f.Add([]byte(`G{"v":1,"token":{"create":{"id":"tok-1","role":"read-only","tenant":"a","created":"2026-01-01T00:00:00Z","sha256":"` + hash + `"}}}`))
	f.Add([]byte(`G{"v":1,"token":{"revoke":{"id":"bootstrap.admin","role":"admin","bootstrap":true,"revoked":"2026-01-01T00:00:00Z","sha256":"` + hash + `"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil || e.grid == nil {
			return
		}
		out, err := e.grid.encode()
		if err != nil {
			t.Fatalf("an accepted command does not encode: %v", err)
		}
		again, err := decodeEntry(out)
		if err != nil || again.grid == nil {
			t.Fatalf("a re-encoded command is refused: %v\n%s", err, out)
		}
		if a, b := mustJSON(t, e.grid), mustJSON(t, again.grid); a != b {
			t.Fatalf("round trip changed %s into %s", a, b)
		}
	})
}

// FuzzDecodeSnapshot: the snapshot decoder never panics, and what it
// accepts restores.
func FuzzDecodeSnapshot(f *testing.F) {
	hash := HashToken("m")
	f.Add([]byte(`{"version":1,"state":{}}`))
	f.Add([]byte(`{"grid":1,"core":{"version":1,"state":{}},"tokens":[],"modules":[{"hash":"` + hash + `","size":3,"owners":["a","b"]}]}`))
	f.Add([]byte(`{"grid":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		snap, legacy, err := decodeSnapshot(b)
		if err != nil || legacy {
			return
		}
		s := newModuleStore(t.TempDir(), LimitsConfig{}.withDefaults())
		s.restore(snap.Modules)
		if got := s.records(); len(got) != len(snap.Modules) {
			t.Fatalf("%d modules restored of %d", len(got), len(snap.Modules))
		}
		ts := tokens.NewStore(nil, time.Now)
		ts.Restore(snap.Tokens)
	})
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

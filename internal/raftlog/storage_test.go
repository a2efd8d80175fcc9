package raftlog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// stoppedServer runs a one-server cluster, proposes cmds, and stops it,
// leaving its state dir.
func stoppedServer(t *testing.T, snapshotEntries uint64, cmds ...string) (*cluster, string) {
	t.Helper()
	c, _ := newMemCluster(t, 1, func(cfg *Config) { cfg.SnapshotEntries = snapshotEntries })
	c.start(1)
	c.leader(electionBound)
	for _, cmd := range cmds {
		k, v, _ := strings.Cut(cmd, "=")
		c.propose(1, k, v)
	}
	if err := c.stop(1); err != nil {
		t.Fatal(err)
	}
	return c, filepath.Join(c.dir, "s1", dbFile)
}

// wantCorrupt checks that err is a *CorruptError naming path, saying
// what to do next, and containing each of words.
func wantCorrupt(t *testing.T, err error, path string, words ...string) {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a *CorruptError", err)
	}
	msg := err.Error()
	for _, w := range append([]string{path, "restore it from a backup", "re-add it to the cluster as a new member"}, words...) {
		if !strings.Contains(msg, w) {
			t.Errorf("the error does not say %q: %s", w, msg)
		}
	}
	t.Log(msg)
}

// rewrite changes raft.db with bbolt, as a bug or a bad disk might.
func rewrite(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenTruncatedFile(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	// A negative size cuts that many bytes off the data bbolt uses (the
	// file may be longer: bbolt grows it ahead).
	for _, size := range []int64{0, 100, 4096 + 100, -4096} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c, path := stoppedServer(t, 1000, "a=1", "b=2")
			if size == 0 {
				// An empty file is what a crash leaves before the first
				// transaction: it is a new state dir.
				if err := os.Truncate(path, 0); err != nil {
					t.Fatal(err)
				}
				n, _, err := c.open(1)
				if err != nil {
					t.Fatal(err)
				}
				n.Close()
				return
			}
			if size < 0 {
				db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				_ = db.View(func(tx *bolt.Tx) error { size += tx.Size(); return nil })
				db.Close()
			}
			if err := os.Truncate(path, size); err != nil {
				t.Fatal(err)
			}
			_, _, err := c.open(1)
			wantCorrupt(t, err, path)
		})
	}
}

func TestOpenGarbageFile(t *testing.T) {
	c, path := stoppedServer(t, 1000, "a=1")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.open(1)
	wantCorrupt(t, err, path)
}

// TestOpenFlippedByteInEntry flips a byte of a command where it lies in
// the file: the record's checksum finds it.
func TestOpenFlippedByteInEntry(t *testing.T) {
	c, path := stoppedServer(t, 1000, "a=1", "needle=XXXXXXXXXXXXXXXX", "b=2")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	needle := []byte("XXXXXXXXXXXXXXXX")
	if bytes.Count(b, needle) == 0 {
		t.Fatal("the command is not in the file")
	}
	// Flip every copy: bbolt leaves stale copies in free pages.
	for i := bytes.Index(b, needle); i >= 0; i = bytes.Index(b, needle) {
		b[i+5] ^= 0x20
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, f, err := c.open(1)
	wantCorrupt(t, err, path, "entries/", "checksum")
	if _, ok := f.get("needle"); ok {
		t.Error("the corrupt command was applied")
	}
}

// TestOpenBadEnvelope stores an entry whose record is well formed but
// whose command envelope was damaged before it was stored: the envelope's
// checksum finds it.
func TestOpenBadEnvelope(t *testing.T) {
	c, path := stoppedServer(t, 1000, "a=1", "b=2")
	rewrite(t, path, func(tx *bolt.Tx) error {
		eb := tx.Bucket(bucketEntries)
		k, v := eb.Cursor().Last()
		body, err := decodeRecord(v)
		if err != nil {
			return err
		}
		e := &raftpb.Entry{}
		if err := proto.Unmarshal(body, e); err != nil {
			return err
		}
		e.Data[len(e.Data)-1] ^= 1
		return putRecord(eb, k, e)
	})
	_, _, err := c.open(1)
	wantCorrupt(t, err, path, "entries/", "entry envelope: checksum")
}

func TestOpenGapInLog(t *testing.T) {
	c, path := stoppedServer(t, 1000, "a=1", "b=2", "c=3")
	rewrite(t, path, func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketEntries).Cursor().First()
		return tx.Bucket(bucketEntries).Delete(k)
	})
	_, _, err := c.open(1)
	wantCorrupt(t, err, path, "gap")
}

func TestOpenBadSnapshot(t *testing.T) {
	c, path := stoppedServer(t, 3, "a=1", "b=2", "c=3", "d=4")
	rewrite(t, path, func(tx *bolt.Tx) error {
		sb := tx.Bucket(bucketSnapshot)
		body, err := decodeRecord(sb.Get(keySnap))
		if err != nil {
			return err
		}
		s := &raftpb.Snapshot{}
		if err := proto.Unmarshal(body, s); err != nil {
			return err
		}
		s.Data[len(s.Data)-1] ^= 1
		return putRecord(sb, keySnap, s)
	})
	_, _, err := c.open(1)
	wantCorrupt(t, err, path, "snapshot/latest", "snapshot envelope: checksum")
}

func TestOpenFSMRefusesSnapshot(t *testing.T) {
	c, path := stoppedServer(t, 3, "a=1", "b=2", "c=3", "d=4")
	f := newKV()
	f.failRestore = errors.New("unknown snapshot version 9")
	_, err := Open(c.config(c.peer(1)), f)
	if err == nil {
		t.Fatal("Open succeeded")
	}
	for _, w := range []string{path, "the FSM refused the snapshot at index", "unknown snapshot version 9"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the error does not say %q: %v", w, err)
		}
	}
}

func TestOpenOtherClusterOrServer(t *testing.T) {
	c, path := stoppedServer(t, 1000, "a=1")
	cfg := c.config(c.peer(1))
	cfg.ClusterID = "another"
	_, err := Open(cfg, newKV())
	for _, w := range []string{path, `cluster "test-cluster"`, `cluster "another"`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("another cluster: the error does not say %q: %v", w, err)
		}
	}
	if !errors.Is(err, ErrOtherCluster) {
		t.Errorf("another cluster: the error does not wrap ErrOtherCluster: %v", err)
	}

	cfg = c.config(c.peer(1))
	cfg.ID = 2
	cfg.Peers = []Peer{{ID: 2, Name: "s2", Addr: "mem-2"}}
	_, err = Open(cfg, newKV())
	for _, w := range []string{path, "server 1", "server 2"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("another server: the error does not say %q: %v", w, err)
		}
	}
	if !errors.Is(err, ErrOtherServer) {
		t.Errorf("another server: the error does not wrap ErrOtherServer: %v", err)
	}
}

func TestOpenPeersDisagree(t *testing.T) {
	c, path := stoppedServer(t, 1000, "a=1")
	cfg := c.config(c.peer(1))
	cfg.Peers = []Peer{{ID: 1, Name: "renamed", Addr: "mem-1"}, {ID: 7, Name: "s7", Addr: "mem-7"}}
	_, err := Open(cfg, newKV())
	for _, w := range []string{path, "1 is named renamed in the config but s1 in the state", "7 (s7) is in the config but not a member"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("the error does not say %q: %v", w, err)
		}
	}
	if !errors.Is(err, ErrMembers) {
		t.Errorf("the error does not wrap ErrMembers: %v", err)
	}
	// No Peers: the recorded members are used.
	cfg.Peers = nil
	n, err := Open(cfg, newKV())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if m := n.Status().Members; len(m) != 1 || m[0].Name != "s1" {
		t.Errorf("members %v", m)
	}
}

func TestOpenInUse(t *testing.T) {
	c, path := stoppedServer(t, 1000, "a=1")
	n, _, err := c.open(1)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	_, _, err = c.open(1)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second Open: %v", err)
	}
}

// TestBackup copies raft.db while the server runs and opens the copy.
func TestBackup(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	c, _ := newMemCluster(t, 1, func(cfg *Config) { cfg.SnapshotEntries = 10 })
	c.start(1)
	c.leader(electionBound)
	for i := range 25 {
		c.propose(1, fmt.Sprintf("k%d", i), "v")
	}
	var buf bytes.Buffer
	if _, err := c.node(1).Backup(&buf); err != nil {
		t.Fatal(err)
	}
	c.propose(1, "after", "backup")
	if err := c.stop(1); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(c.dir, "s1", dbFile)
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	n, f, err := c.open(1)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if got := len(f.snapshotOf()); got != 25 {
		t.Errorf("the backup holds %d keys, want 25", got)
	}
}

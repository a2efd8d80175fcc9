package raftlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The state dir holds one bbolt file. Its layout is in docs/raftlog.md,
// "Storage layout".
const (
	dbFile        = "raft.db"
	formatVersion = 1
)

var (
	bucketMeta      = []byte("meta")
	bucketHardState = []byte("hardstate")
	bucketEntries   = []byte("entries")
	bucketSnapshot  = []byte("snapshot")

	keyFormat  = []byte("format")
	keyCluster = []byte("cluster")
	keyNode    = []byte("node")
	keyHS      = []byte("hardstate")
	keySnap    = []byte("latest")
)

// repairAdvice is what an operator does about a state dir that cannot be
// read.
const repairAdvice = "restore it from a backup, or remove this server's state dir and re-add it to the cluster as a new member (docs/raftlog.md, \"Replacing a server\")"

// CorruptError says that the state dir cannot be read back: which file,
// which record, and what the operator does next.
type CorruptError struct {
	Path   string // the bbolt file
	Record string // the bucket and key, or "" when the file does not open
	Err    error
}

func (e *CorruptError) Error() string {
	where := e.Path
	if e.Record != "" {
		where += ": " + e.Record
	}
	return fmt.Sprintf("raftlog: %s is corrupt or truncated: %v; %s", where, e.Err, repairAdvice)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// diskStore is the durable side of the log: every method is one bbolt
// transaction, committed with fsync.
type diskStore struct {
	db   *bolt.DB
	path string
}

// openDisk opens (creating if need be) dir/raft.db and checks its meta
// bucket against the cluster id and node id. A new file is initialised by
// init, in the same transaction that writes its meta bucket.
func openDisk(dir, cluster string, node uint64, init func(*bolt.Tx) error) (s *diskStore, fresh bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("raftlog: state dir: %w", err)
	}
	path := filepath.Join(dir, dbFile)
	if _, err := os.Stat(path); err != nil {
		fresh = true
	}
	db, err := openBolt(path)
	if err != nil {
		return nil, false, err
	}
	s = &diskStore{db: db, path: path}
	if !fresh {
		// A crash between bbolt creating the file and the first
		// transaction leaves a file without buckets: start it anew.
		_ = s.view(func(tx *bolt.Tx) error {
			k, _ := tx.Cursor().First()
			fresh = k == nil
			return nil
		})
	}
	defer func() {
		if err != nil {
			_ = db.Close()
			s = nil
		}
	}()
	if fresh {
		err = db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketMeta, bucketHardState, bucketEntries, bucketSnapshot} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			m := tx.Bucket(bucketMeta)
			if err := m.Put(keyFormat, []byte{formatVersion}); err != nil {
				return err
			}
			if err := m.Put(keyCluster, []byte(cluster)); err != nil {
				return err
			}
			if err := m.Put(keyNode, binary.BigEndian.AppendUint64(nil, node)); err != nil {
				return err
			}
			return init(tx)
		})
		if err != nil {
			return nil, false, fmt.Errorf("raftlog: initialise %s: %w", path, err)
		}
		return s, true, nil
	}
	if err := s.checkSize(); err != nil {
		return nil, false, err
	}
	return s, false, s.checkMeta(cluster, node)
}

// checkSize refuses a file shorter than the pages bbolt's meta page says
// it holds: bbolt does not check, and reading a page past the end of the
// mapped file faults.
func (s *diskStore) checkSize() error {
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("raftlog: %w", err)
	}
	var want int64
	if err := s.view(func(tx *bolt.Tx) error { want = tx.Size(); return nil }); err != nil {
		return err
	}
	if fi.Size() < want {
		return &CorruptError{Path: s.path, Err: fmt.Errorf("%d bytes, but its pages reach %d", fi.Size(), want)}
	}
	return nil
}

func openBolt(path string) (db *bolt.DB, err error) {
	// bbolt panics on some damaged pages rather than returning an error.
	defer func() {
		if r := recover(); r != nil {
			err = &CorruptError{Path: path, Err: fmt.Errorf("bbolt: %v", r)}
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("raftlog: %s is in use by another process (is this server already running?)", path)
	case err != nil:
		return nil, &CorruptError{Path: path, Err: err}
	}
	return db, nil
}

func (s *diskStore) checkMeta(cluster string, node uint64) error {
	return s.view(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		for _, b := range [][]byte{bucketMeta, bucketHardState, bucketEntries, bucketSnapshot} {
			if tx.Bucket(b) == nil {
				return &CorruptError{Path: s.path, Record: "bucket " + string(b), Err: errors.New("missing")}
			}
		}
		if f := m.Get(keyFormat); len(f) != 1 || f[0] != formatVersion {
			return &CorruptError{Path: s.path, Record: "meta/format", Err: fmt.Errorf("format %x, want %d", f, formatVersion)}
		}
		if c := m.Get(keyCluster); string(c) != cluster {
			return fmt.Errorf("raftlog: %s belongs to cluster %q, not to cluster %q of this server's config: point Dir at this cluster's state dir, or fix ClusterID: %w", s.path, c, cluster, ErrOtherCluster)
		}
		n := m.Get(keyNode)
		if len(n) != 8 {
			return &CorruptError{Path: s.path, Record: "meta/node", Err: fmt.Errorf("%d bytes, want 8", len(n))}
		}
		if got := binary.BigEndian.Uint64(n); got != node {
			return fmt.Errorf("raftlog: %s is the state of server %d, not of server %d of this server's config: point Dir at server %d's own state dir, or fix ID: %w", s.path, got, node, node, ErrOtherServer)
		}
		return nil
	})
}

// view runs a read transaction, turning a bbolt panic on a damaged page,
// or a fault on a page the file lacks, into a CorruptError.
func (s *diskStore) view(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &CorruptError{Path: s.path, Err: fmt.Errorf("bbolt: %v", r)}
		}
	}()
	return s.db.View(fn)
}

func (s *diskStore) close() error { return s.db.Close() }

// persisted is the state dir read back.
type persisted struct {
	snap    *raftpb.Snapshot // nil when there is none
	hs      *raftpb.HardState
	entries []*raftpb.Entry // contiguous, after snap
}

// load reads the snapshot, the hard state and the entries after the
// snapshot, checking every record.
func (s *diskStore) load() (p persisted, err error) {
	p.hs = &raftpb.HardState{}
	err = s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketSnapshot).Get(keySnap); v != nil {
			p.snap = &raftpb.Snapshot{}
			if err := s.unmarshal("snapshot/latest", v, p.snap); err != nil {
				return err
			}
		}
		if v := tx.Bucket(bucketHardState).Get(keyHS); v != nil {
			if err := s.unmarshal("hardstate/hardstate", v, p.hs); err != nil {
				return err
			}
		}
		after := p.snap.GetMetadata().GetIndex()
		c := tx.Bucket(bucketEntries).Cursor()
		for k, v := c.Seek(indexKey(after + 1)); k != nil; k, v = c.Next() {
			rec := fmt.Sprintf("entries/%x", k)
			if len(k) != 8 {
				return &CorruptError{Path: s.path, Record: rec, Err: errors.New("key is not an 8-byte index")}
			}
			e := &raftpb.Entry{}
			if err := s.unmarshal(rec, v, e); err != nil {
				return err
			}
			want := after + 1 + uint64(len(p.entries))
			if got := binary.BigEndian.Uint64(k); e.GetIndex() != got || got != want {
				return &CorruptError{Path: s.path, Record: rec, Err: fmt.Errorf("entry index %d under key %d, want %d (a gap in the log)", e.GetIndex(), got, want)}
			}
			p.entries = append(p.entries, e)
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	last := p.snap.GetMetadata().GetIndex() + uint64(len(p.entries))
	if c := p.hs.GetCommit(); c > last {
		return p, &CorruptError{Path: s.path, Record: "hardstate/hardstate", Err: fmt.Errorf("commit index %d is past the last entry %d: entries are missing", c, last)}
	}
	return p, nil
}

func (s *diskStore) unmarshal(rec string, v []byte, m proto.Message) error {
	body, err := decodeRecord(v)
	if err == nil {
		err = proto.Unmarshal(body, m)
	}
	if err != nil {
		return &CorruptError{Path: s.path, Record: rec, Err: err}
	}
	return nil
}

func indexKey(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i) }

func putRecord(b *bolt.Bucket, k []byte, m proto.Message) error {
	body, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	return b.Put(k, encodeRecord(body))
}

// save persists one Ready, in one transaction: a snapshot received from
// the leader (which replaces the whole log), then the new entries (which
// replace any at or after their first index), then the hard state.
func (s *diskStore) save(snap *raftpb.Snapshot, ents []*raftpb.Entry, hs *raftpb.HardState) error {
	if snap == nil && len(ents) == 0 && hs == nil {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		eb := tx.Bucket(bucketEntries)
		if snap != nil {
			if err := putRecord(tx.Bucket(bucketSnapshot), keySnap, snap); err != nil {
				return err
			}
			if err := deleteFrom(eb, 0); err != nil {
				return err
			}
		}
		if len(ents) > 0 {
			if err := deleteFrom(eb, ents[0].GetIndex()); err != nil {
				return err
			}
			for _, e := range ents {
				if err := putRecord(eb, indexKey(e.GetIndex()), e); err != nil {
					return err
				}
			}
		}
		if hs != nil {
			return putRecord(tx.Bucket(bucketHardState), keyHS, hs)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("raftlog: persist to %s: %w", s.path, err)
	}
	return nil
}

// saveSnapshot stores a snapshot this server took and deletes the entries
// up to compactTo, in one transaction.
func (s *diskStore) saveSnapshot(snap *raftpb.Snapshot, compactTo uint64) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := putRecord(tx.Bucket(bucketSnapshot), keySnap, snap); err != nil {
			return err
		}
		c := tx.Bucket(bucketEntries).Cursor()
		// A bbolt cursor skips an item when Next follows Delete: seek anew.
		for k, _ := c.First(); k != nil && bytes.Compare(k, indexKey(compactTo)) <= 0; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("raftlog: store the snapshot at %d in %s: %w", snap.GetMetadata().GetIndex(), s.path, err)
	}
	return nil
}

// deleteFrom deletes the entries at index i and after.
func deleteFrom(b *bolt.Bucket, i uint64) error {
	c := b.Cursor()
	for k, _ := c.Seek(indexKey(i)); k != nil; k, _ = c.Seek(indexKey(i)) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

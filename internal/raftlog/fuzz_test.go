package raftlog

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// FuzzEnvelope feeds arbitrary bytes to every decoder of the storage
// formats: the entry envelope, the snapshot envelope, a member in a
// configuration change and a storage record. None may panic; whatever
// decodes must encode back to the same bytes.
func FuzzEnvelope(f *testing.F) {
	f.Add(encodeEntry(1, 2, []byte("k=v")))
	f.Add(encodeEntry(0, 0, nil))
	f.Add(encodeSnapshot(snapshotData{members: []Peer{{1, "a", "127.0.0.1:1"}, {2, "b", "x:2"}}, hasFSM: true, fsm: []byte("{}")}))
	f.Add(encodeSnapshot(snapshotData{members: []Peer{{1, "a", ""}}}))
	f.Add(encodePeer(Peer{7, "s7", "h:7"}))
	f.Add(encodeRecord([]byte("body")))
	f.Fuzz(func(t *testing.T, b []byte) {
		if proposer, id, cmd, err := decodeEntry(b); err == nil {
			if got := encodeEntry(proposer, id, cmd); !bytes.Equal(got, b) {
				t.Errorf("entry %x re-encodes as %x", b, got)
			}
		} else if !errors.Is(err, errCorrupt) {
			t.Errorf("entry: an error that is not errCorrupt: %v", err)
		}
		if s, err := decodeSnapshot(b); err == nil {
			if got := encodeSnapshot(s); !bytes.Equal(got, b) {
				t.Errorf("snapshot %x re-encodes as %x", b, got)
			}
		} else if !errors.Is(err, errCorrupt) {
			t.Errorf("snapshot: an error that is not errCorrupt: %v", err)
		}
		if p, err := decodePeer(b); err == nil {
			if got := encodePeer(p); !bytes.Equal(got, b) {
				t.Errorf("peer %x re-encodes as %x", b, got)
			}
		}
		if body, err := decodeRecord(b); err == nil {
			if got := encodeRecord(body); !bytes.Equal(got, b) {
				t.Errorf("record %x re-encodes as %x", b, got)
			}
		}
	})
}

// FuzzFrame feeds arbitrary streams to the transport's frame reader: it
// must not panic nor read a frame over the cap, and a frame that reads
// is what appendFrame wrote.
func FuzzFrame(f *testing.F) {
	m := &raftpb.Message{Type: raftpb.MsgApp.Enum(), To: new(uint64(2)), From: new(uint64(1)), Entries: []*raftpb.Entry{{Index: new(uint64(3)), Data: []byte("x")}}}
	body, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(appendFrame(nil, body))
	f.Add(appendFrame(appendFrame(nil, body), nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Add([]byte{0, 0, 0, 9, 1, 2})
	const max = 1 << 12
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		var buf []byte
		for {
			frame, err := readFrame(r, buf, max)
			if err != nil {
				if err != io.EOF && r.Len() != 0 && !bytes.Contains([]byte(err.Error()), []byte("cap")) {
					t.Errorf("error with %d bytes unread: %v", r.Len(), err)
				}
				return
			}
			if len(frame) > max {
				t.Fatalf("a frame of %d bytes over the cap", len(frame))
			}
			var m raftpb.Message
			_ = proto.Unmarshal(frame, &m) // must not panic
			buf = frame
		}
	})
}

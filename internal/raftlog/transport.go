package raftlog

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
)

// Transport carries raft messages between the servers of a cluster.
// Messages may be lost, duplicated or reordered: raft retransmits.
type Transport interface {
	// Run receives the messages for self and hands them to inbox, and
	// sends what Send queued, until ctx ends. Node.Run calls it once, in
	// a goroutine of its own, and waits for it to return.
	Run(ctx context.Context, self Peer, inbox Inbox) error
	// Send queues msgs, all addressed to the peer to, and returns at once:
	// it never blocks the raft loop. Messages that do not fit a bounded
	// queue are dropped. It is called from the raft loop only, which
	// owns msgs until Send returns.
	Send(to Peer, msgs []*raftpb.Message)
}

// Inbox is how a Transport hands the node what it received, and tells it
// what became of what it sent. Its methods are safe for concurrent use.
type Inbox interface {
	// Deliver hands over a received message. sender is the name the
	// transport authenticated (a certificate's common name), or "" when
	// the transport does not authenticate; a message whose From is not
	// the member of that name is dropped. Deliver blocks until the node
	// takes the message or ctx ends.
	Deliver(ctx context.Context, sender string, m *raftpb.Message) error
	// ReportUnreachable says that a message to id could not be sent. It
	// never blocks.
	ReportUnreachable(id uint64)
	// ReportSnapshot says whether a MsgSnap to id was sent whole. Every
	// MsgSnap given to Send must be reported, once. It never blocks.
	ReportSnapshot(id uint64, delivered bool)
}

// DefaultMaxFrame is the largest frame a transport sends or accepts by
// default: 64 MiB. A MsgSnap carries the whole FSM snapshot, so the
// snapshot of the FSM must stay below it.
const DefaultMaxFrame = 64 << 20

// A frame is a message on the wire: a 4-byte big-endian length, then the
// protobuf encoding of a raftpb.Message (docs/raftlog.md, "Transport").
func appendFrame(b, msg []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
	return append(b, msg...)
}

// readFrame reads one frame of at most max bytes of message; buf is reused
// when it is large enough. It returns io.EOF at a clean end of stream.
func readFrame(r io.Reader, buf []byte, max int) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("raftlog: a frame of %d bytes is over the %d-byte cap", n, max)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("raftlog: a frame of %d bytes is cut short: %w", n, err)
	}
	return buf, nil
}

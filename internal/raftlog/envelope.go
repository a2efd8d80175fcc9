package raftlog

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// The formats of this file are described in docs/raftlog.md, "Storage
// layout". Each starts with a version byte and carries a CRC-32C
// (Castagnoli), so that a flipped bit is found when the bytes are read,
// never applied.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt is wrapped by every decoding error of this file.
var errCorrupt = errors.New("corrupt")

const (
	entryVersion = 1
	// entryHeader is version (1), proposer (8), proposal id (8), crc (4).
	entryHeader = 1 + 8 + 8 + 4
)

// encodeEntry wraps a command in the entry envelope: the id of the server
// that proposed it and the proposal id that ties the committed entry to
// the waiting Propose call, and a CRC-32C over everything but itself.
func encodeEntry(proposer, id uint64, cmd []byte) []byte {
	b := make([]byte, entryHeader+len(cmd))
	b[0] = entryVersion
	binary.BigEndian.PutUint64(b[1:], proposer)
	binary.BigEndian.PutUint64(b[9:], id)
	copy(b[entryHeader:], cmd)
	binary.BigEndian.PutUint32(b[17:], entryCRC(b))
	return b
}

func entryCRC(b []byte) uint32 {
	c := crc32.Update(0, castagnoli, b[:17])
	return crc32.Update(c, castagnoli, b[entryHeader:])
}

// decodeEntry checks an entry envelope and returns its fields. cmd aliases b.
func decodeEntry(b []byte) (proposer, id uint64, cmd []byte, err error) {
	proposer, id, err = entryHeaderOf(b)
	if err != nil {
		return 0, 0, nil, err
	}
	if got, want := binary.BigEndian.Uint32(b[17:]), entryCRC(b); got != want {
		return 0, 0, nil, fmt.Errorf("entry envelope: checksum %08x, want %08x: %w", got, want, errCorrupt)
	}
	return proposer, id, b[entryHeader:], nil
}

// entryHeaderOf reads the proposer and the proposal id without checking
// the checksum: the Ready loop uses it to find its own proposals in the
// entries it is about to persist.
func entryHeaderOf(b []byte) (proposer, id uint64, err error) {
	if len(b) < entryHeader {
		return 0, 0, fmt.Errorf("entry envelope: %d bytes, shorter than its %d-byte header: %w", len(b), entryHeader, errCorrupt)
	}
	if b[0] != entryVersion {
		return 0, 0, fmt.Errorf("entry envelope: version %d, want %d: %w", b[0], entryVersion, errCorrupt)
	}
	return binary.BigEndian.Uint64(b[1:]), binary.BigEndian.Uint64(b[9:]), nil
}

const (
	snapshotVersion = 1
	// snapshotHeader is version (1), crc (4), flags (1).
	snapshotHeader = 1 + 4 + 1
	snapshotHasFSM = 1 << 0
	// maxMembers bounds the member count a snapshot may claim.
	maxMembers = 1 << 10
	maxField   = 1 << 10
)

// snapshotData is what a raft snapshot's Data holds: the member list as of
// the snapshot's index and, unless it is the bootstrap snapshot of a new
// cluster, the FSM's state.
type snapshotData struct {
	members []Peer
	hasFSM  bool
	fsm     []byte
}

func encodeSnapshot(s snapshotData) []byte {
	b := make([]byte, snapshotHeader, snapshotHeader+64*len(s.members)+len(s.fsm))
	b[0] = snapshotVersion
	if s.hasFSM {
		b[5] = snapshotHasFSM
	}
	b = appendMembers(b, s.members)
	b = append(b, s.fsm...)
	binary.BigEndian.PutUint32(b[1:], snapshotCRC(b))
	return b
}

func snapshotCRC(b []byte) uint32 {
	c := crc32.Update(0, castagnoli, b[:1])
	return crc32.Update(c, castagnoli, b[5:])
}

// decodeSnapshot checks a snapshot envelope; fsm aliases b.
func decodeSnapshot(b []byte) (snapshotData, error) {
	var s snapshotData
	if len(b) < snapshotHeader {
		return s, fmt.Errorf("snapshot envelope: %d bytes, shorter than its %d-byte header: %w", len(b), snapshotHeader, errCorrupt)
	}
	if b[0] != snapshotVersion {
		return s, fmt.Errorf("snapshot envelope: version %d, want %d: %w", b[0], snapshotVersion, errCorrupt)
	}
	if got, want := binary.BigEndian.Uint32(b[1:]), snapshotCRC(b); got != want {
		return s, fmt.Errorf("snapshot envelope: checksum %08x, want %08x: %w", got, want, errCorrupt)
	}
	if b[5]&^snapshotHasFSM != 0 {
		return s, fmt.Errorf("snapshot envelope: unknown flags %#x: %w", b[5], errCorrupt)
	}
	s.hasFSM = b[5]&snapshotHasFSM != 0
	members, rest, err := readMembers(b[snapshotHeader:])
	if err != nil {
		return s, fmt.Errorf("snapshot envelope: %w", err)
	}
	s.members = members
	if s.hasFSM {
		s.fsm = rest
	} else if len(rest) != 0 {
		return s, fmt.Errorf("snapshot envelope: %d bytes of state in a snapshot without state: %w", len(rest), errCorrupt)
	}
	return s, nil
}

// appendMembers encodes a member list: a uvarint count, then for each
// member its id (8 bytes) and its name and address, each a uvarint length
// and bytes.
func appendMembers(b []byte, ms []Peer) []byte {
	b = binary.AppendUvarint(b, uint64(len(ms)))
	for _, m := range ms {
		b = appendPeer(b, m)
	}
	return b
}

func appendPeer(b []byte, p Peer) []byte {
	b = binary.BigEndian.AppendUint64(b, p.ID)
	b = binary.AppendUvarint(b, uint64(len(p.Name)))
	b = append(b, p.Name...)
	b = binary.AppendUvarint(b, uint64(len(p.Addr)))
	return append(b, p.Addr...)
}

func readMembers(b []byte) ([]Peer, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > maxMembers {
		return nil, nil, fmt.Errorf("bad member count: %w", errCorrupt)
	}
	b = b[k:]
	ms := make([]Peer, 0, n)
	for range n {
		var p Peer
		var err error
		if p, b, err = readPeer(b); err != nil {
			return nil, nil, err
		}
		ms = append(ms, p)
	}
	if err := checkMembers(ms); err != nil {
		return nil, nil, fmt.Errorf("%v: %w", err, errCorrupt)
	}
	return ms, b, nil
}

func readPeer(b []byte) (Peer, []byte, error) {
	var p Peer
	if len(b) < 8 {
		return p, nil, fmt.Errorf("truncated member: %w", errCorrupt)
	}
	p.ID, b = binary.BigEndian.Uint64(b), b[8:]
	var err error
	if p.Name, b, err = readString(b); err != nil {
		return p, nil, err
	}
	if p.Addr, b, err = readString(b); err != nil {
		return p, nil, err
	}
	return p, b, nil
}

func readString(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > maxField || n > uint64(len(b)-k) {
		return "", nil, fmt.Errorf("bad string length: %w", errCorrupt)
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

// encodePeer and decodePeer carry a new member in a ConfChange's Context.
func encodePeer(p Peer) []byte { return appendPeer(nil, p) }

func decodePeer(b []byte) (Peer, error) {
	p, rest, err := readPeer(b)
	if err != nil {
		return p, err
	}
	if len(rest) != 0 || p.ID == 0 || p.Name == "" {
		return p, fmt.Errorf("bad member in a configuration change: %w", errCorrupt)
	}
	return p, nil
}

// checkMembers checks that ids are non-zero and sorted without
// duplicates, and names non-empty and unique.
func checkMembers(ms []Peer) error {
	names := make(map[string]bool, len(ms))
	for i, m := range ms {
		if m.ID == 0 || m.Name == "" {
			return fmt.Errorf("member %d has a zero id or an empty name", i)
		}
		if i > 0 && ms[i-1].ID >= m.ID {
			return errors.New("members are not sorted by id, or an id repeats")
		}
		if names[m.Name] {
			return fmt.Errorf("member name %q repeats", m.Name)
		}
		names[m.Name] = true
	}
	return nil
}

// sortedPeers returns a copy of ps sorted by id.
func sortedPeers(ps []Peer) []Peer {
	out := slices.Clone(ps)
	slices.SortFunc(out, func(a, b Peer) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// A record is how storage holds a protobuf: a CRC-32C of the body, then
// the body. bbolt has no checksums of its own over values.
func encodeRecord(body []byte) []byte {
	b := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(b, crc32.Checksum(body, castagnoli))
	copy(b[4:], body)
	return b
}

func decodeRecord(b []byte) ([]byte, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("record of %d bytes: %w", len(b), errCorrupt)
	}
	if got, want := binary.BigEndian.Uint32(b), crc32.Checksum(b[4:], castagnoli); got != want {
		return nil, fmt.Errorf("record checksum %08x, want %08x: %w", got, want, errCorrupt)
	}
	return b[4:], nil
}

package quicnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/wasmgrid/wasmgrid/shuffle"
)

// Wire constants of the block transport, version 1 (docs/shuffle.md, "Block
// transport").
const (
	protoMagic   = "WGBT"
	protoVersion = 1

	maxJobLen    = 255
	maxTokenLen  = 1024
	maxBlocks    = 4096 // blocks per request
	maxMsgLen    = 1024 // error message in a response
	reqFixedSize = 4 + 2 + 2 + 2 + 2 + 4
	blockReqSize = 8 + 4 + 4 + 4
	// maxRequestSize bounds what the server reads before it answers.
	maxRequestSize = reqFixedSize + maxJobLen + maxTokenLen + maxBlocks*blockReqSize
)

// Response status of one block.
const (
	statusOK           = 0 // u64 length, then the block verbatim (0 = empty partition)
	statusNotFound     = 1 // no such map output (or partition out of range)
	statusUnauthorized = 2 // wrong token for the job; the stream ends
	statusBadRequest   = 3 // malformed request or bad job name; the stream ends
	statusCorrupt      = 4 // the index or data file on the server is corrupt
	statusError        = 5 // any other server error
)

// BlockReq names one block of a map output in a request.
type BlockReq struct {
	ID        shuffle.MapOutputID
	Partition int
}

// request is the header a client writes on each stream.
type request struct {
	job, token string
	blocks     []BlockReq
}

var errBadRequest = errors.New("bad request")

// validJob reports whether job can name a directory under the server's root:
// 1 to 255 bytes of letters, digits, '-', '_' and '.', and not "." or "..".
func validJob(job string) bool {
	if job == "" || len(job) > maxJobLen || job == "." || job == ".." || strings.Contains(job, "..") {
		return false
	}
	for i := 0; i < len(job); i++ {
		c := job[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// appendRequest encodes a request. It does not validate the job name, so
// tests can send bad ones; the client checks before calling it.
func appendRequest(b []byte, r request) ([]byte, error) {
	if len(r.job) > maxJobLen || len(r.token) > maxTokenLen || len(r.blocks) == 0 || len(r.blocks) > maxBlocks {
		return nil, fmt.Errorf("%w: job of %d bytes, token of %d bytes, %d blocks", errBadRequest, len(r.job), len(r.token), len(r.blocks))
	}
	le := binary.LittleEndian
	b = append(b, protoMagic...)
	b = le.AppendUint16(b, protoVersion)
	b = le.AppendUint16(b, 0) // flags
	b = le.AppendUint16(b, uint16(len(r.job)))
	b = append(b, r.job...)
	b = le.AppendUint16(b, uint16(len(r.token)))
	b = append(b, r.token...)
	b = le.AppendUint32(b, uint32(len(r.blocks)))
	for _, q := range r.blocks {
		if q.Partition < 0 || int64(q.Partition) > 1<<32-1 {
			return nil, fmt.Errorf("%w: partition %d", errBadRequest, q.Partition)
		}
		b = le.AppendUint64(b, q.ID.ShuffleID)
		b = le.AppendUint32(b, q.ID.MapIndex)
		b = le.AppendUint32(b, q.ID.Attempt)
		b = le.AppendUint32(b, uint32(q.Partition))
	}
	return b, nil
}

// readRequest reads and decodes a request header from r, reading at most
// maxRequestSize bytes. It checks the bounds but not the job name.
func readRequest(r io.Reader) (request, error) {
	var fixed [8]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return request{}, err
	}
	le := binary.LittleEndian
	if string(fixed[:4]) != protoMagic {
		return request{}, fmt.Errorf("%w: bad magic %q", errBadRequest, fixed[:4])
	}
	if v := le.Uint16(fixed[4:]); v != protoVersion {
		return request{}, fmt.Errorf("%w: version %d, want %d", errBadRequest, v, protoVersion)
	}
	if f := le.Uint16(fixed[6:]); f != 0 {
		return request{}, fmt.Errorf("%w: flags %#x", errBadRequest, f)
	}
	job, err := readString(r, maxJobLen, "job")
	if err != nil {
		return request{}, err
	}
	token, err := readString(r, maxTokenLen, "token")
	if err != nil {
		return request{}, err
	}
	var nb [4]byte
	if _, err := io.ReadFull(r, nb[:]); err != nil {
		return request{}, err
	}
	n := le.Uint32(nb[:])
	if n == 0 || n > maxBlocks {
		return request{}, fmt.Errorf("%w: %d blocks (1 to %d)", errBadRequest, n, maxBlocks)
	}
	buf := make([]byte, int(n)*blockReqSize)
	if _, err := io.ReadFull(r, buf); err != nil {
		return request{}, err
	}
	blocks := make([]BlockReq, n)
	for i := range blocks {
		e := buf[i*blockReqSize:]
		blocks[i] = BlockReq{
			ID:        shuffle.MapOutputID{ShuffleID: le.Uint64(e), MapIndex: le.Uint32(e[8:]), Attempt: le.Uint32(e[12:])},
			Partition: int(le.Uint32(e[16:])),
		}
	}
	return request{job: job, token: token, blocks: blocks}, nil
}

func readString(r io.Reader, limit int, what string) (string, error) {
	var lb [2]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return "", err
	}
	n := int(binary.LittleEndian.Uint16(lb[:]))
	if n > limit {
		return "", fmt.Errorf("%w: %s of %d bytes exceeds %d", errBadRequest, what, n, limit)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// appendStatus encodes a non-ok answer: status, u16 length, message.
func appendStatus(b []byte, status byte, msg string) []byte {
	if len(msg) > maxMsgLen {
		msg = msg[:maxMsgLen]
	}
	b = append(b, status)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(msg)))
	return append(b, msg...)
}

// appendOK encodes the head of an ok answer: status and block length.
func appendOK(b []byte, length uint64) []byte {
	return binary.LittleEndian.AppendUint64(append(b, statusOK), length)
}

// statusError is a non-ok answer read by a client.
type statusErr struct {
	status byte
	msg    string
}

func (e *statusErr) Error() string {
	what := "server error"
	switch e.status {
	case statusNotFound:
		what = "not found"
	case statusUnauthorized:
		what = "unauthorized"
	case statusBadRequest:
		what = "bad request"
	case statusCorrupt:
		what = "corrupt"
	}
	return fmt.Sprintf("%s: %s", what, e.msg)
}

// readAnswer reads the head of one answer: the block length for ok, a
// *statusErr otherwise.
func readAnswer(r io.Reader) (uint64, error) {
	var st [1]byte
	if _, err := io.ReadFull(r, st[:]); err != nil {
		return 0, err
	}
	if st[0] == statusOK {
		var lb [8]byte
		if _, err := io.ReadFull(r, lb[:]); err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint64(lb[:]), nil
	}
	if st[0] > statusError {
		return 0, fmt.Errorf("%w: unknown status %d", shuffle.ErrCorrupt, st[0])
	}
	msg, err := readString(r, maxMsgLen, "message")
	if err != nil {
		return 0, err
	}
	return 0, &statusErr{status: st[0], msg: msg}
}

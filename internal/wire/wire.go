// Package wire holds the control-plane messages between the coordinator
// and its agents, and their codec: each message is a frame of a 4-byte
// big-endian length and a JSON envelope {"v":1,"type":...,"body":...}.
// It holds no behaviour; docs/protocol.md describes every message.
package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/planner"
)

// Version is the protocol version this build speaks. A peer that sends
// another is refused with an error naming both.
const Version = 1

// MaxFrame bounds one frame: a longer length prefix is a protocol error,
// never an allocation.
const MaxFrame = 64 << 20

// Message types.
const (
	TypeRegister    = "register"
	TypeRegistered  = "registered"
	TypeLaunch      = "launch"
	TypeKill        = "kill"
	TypeRemoveJob   = "remove_job"
	TypePeerLost    = "peer_lost"
	TypeStatus      = "status"
	TypeAck         = "ack"
	TypeHeartbeat   = "heartbeat"
	TypeFetchModule = "fetch_module"
	TypeModule      = "module"
	TypeError       = "error"
	// Between coordinator servers only.
	TypePushModule   = "push_module"
	TypeModuleStored = "module_stored"
)

// Resources is what an agent offers: CPU millicores, memory and disk MiB.
type Resources struct {
	CPU  int64 `json:"cpu_millis"`
	Mem  int64 `json:"mem_mib"`
	Disk int64 `json:"disk_mib"`
}

// Attempt names one task attempt of a job.
type Attempt struct {
	Job     string          `json:"job"`
	Task    planner.TaskKey `json:"task"`
	Attempt int             `json:"attempt"`
}

// Register is an agent's first message on its control stream.
type Register struct {
	Agent     string    `json:"agent"`
	Version   string    `json:"version"`
	Resources Resources `json:"resources"`
	BlockAddr string    `json:"block_addr"`
	// Running lists the attempts the agent still runs (after a
	// coordinator restart or a reconnect), for reconciliation.
	Running []Attempt `json:"running,omitempty"`
}

// Registered answers Register: the coordinator's epoch, and the attempts
// of Running the agent must kill (the coordinator no longer knows them).
type Registered struct {
	Epoch uint64    `json:"epoch"`
	Kill  []Attempt `json:"kill,omitempty"`
}

// ModuleRef names a module of a job by its sha256; the agent fetches the
// bytes it lacks with FetchModule.
type ModuleRef struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
	Size int64  `json:"size"`
}

// Launch starts one task attempt.
type Launch struct {
	Epoch        uint64           `json:"epoch"`
	Job          string           `json:"job"`
	Tenant       string           `json:"tenant"`
	Token        string           `json:"token"` // shown by the job's tasks to block servers
	Spec         planner.TaskSpec `json:"spec"`
	Modules      []ModuleRef      `json:"modules"`
	Conf         jobspec.Conf     `json:"conf"`
	OutputFile   string           `json:"output_file,omitempty"`   // a path in the volume OutputVolume
	OutputVolume string           `json:"output_volume,omitempty"` // the volume of OutputFile
	OutputFormat string           `json:"output_format,omitempty"`
	// InlineOutput, if not zero, lets a result task return a part of at
	// most this many bytes in its status instead of writing OutputFile.
	InlineOutput int               `json:"inline_output,omitempty"`
	BlockServers map[string]string `json:"block_servers"` // agent -> block server address
	// Volumes are the storage volumes the job's tasks read and write, with
	// the credentials to reach them: they travel only over the mutually
	// authenticated control plane.
	Volumes []storage.Volume `json:"volumes,omitempty"`
}

// Kill stops an attempt; RemoveJob stops a job's attempts and deletes its
// shuffle files.
type Kill struct {
	Epoch   uint64  `json:"epoch"`
	Attempt Attempt `json:"attempt"`
}

// RemoveJob ends a job on an agent.
type RemoveJob struct {
	Epoch uint64 `json:"epoch"`
	Job   string `json:"job"`
}

// PeerLost tells an agent that another was declared lost: its executors
// stop fetching from the lost agent's block server at once, rather than
// wait for the connection's idle timeout (a frozen process closes
// nothing).
type PeerLost struct {
	Epoch     uint64 `json:"epoch"`
	Agent     string `json:"agent"`
	BlockAddr string `json:"block_addr"`
}

// Status reports how an attempt ended.
type Status struct {
	Epoch   uint64  `json:"epoch"`
	Attempt Attempt `json:"attempt"`
	// Result is the executor's result (gob, opaque here) when it
	// succeeded; Failure and Err say why not.
	Result    []byte           `json:"result,omitempty"`
	Failure   *planner.Failure `json:"failure,omitempty"`
	Err       string           `json:"err,omitempty"`
	Log       string           `json:"log,omitempty"`
	ElapsedNS int64            `json:"elapsed_ns"`
	// Seq numbers the agent's statuses, across its connections: the
	// coordinator acknowledges them by it (Ack) once they are committed.
	Seq uint64 `json:"seq,omitempty"`
}

// Ack tells an agent that its statuses through Seq are committed to the
// coordinator's log: it may forget them. A status not acknowledged when
// the connection ends is sent again, after the next registration, to
// whichever server leads then; its attempt is listed in Register.Running
// until then, so that reconciliation does not call it lost.
type Ack struct {
	Seq uint64 `json:"seq"`
}

// Heartbeat keeps an agent alive in the coordinator's eyes between
// statuses.
type Heartbeat struct {
	Running int `json:"running"`
}

// FetchModule asks for a module's bytes on a stream of its own; the
// answer is a Module frame followed by Size raw bytes.
type FetchModule struct {
	Hash string `json:"hash"`
}

// Module heads a module's bytes.
type Module struct {
	Hash string `json:"hash"`
	Size int64  `json:"size"`
}

// PushModule offers a module to another coordinator server, on a stream
// of its own: the server answers ModuleStored, Stored when it holds the
// module already (nothing more is sent) or not to ask for the Size raw
// bytes that follow, after which it answers ModuleStored again once the
// module is on its disk, fsynced (or Error).
type PushModule struct {
	Hash string `json:"hash"`
	Size int64  `json:"size"`
}

// ModuleStored answers PushModule.
type ModuleStored struct {
	Hash   string `json:"hash"`
	Stored bool   `json:"stored"`
}

// Error is a refusal: the request named in Msg cannot be served.
type Error struct {
	Msg string `json:"msg"`
}

// Envelope is one decoded frame.
type Envelope struct {
	V    int             `json:"v"`
	Type string          `json:"type"`
	Body json.RawMessage `json:"body"`
}

// Write sends one message of type typ.
func Write(w io.Writer, typ string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("wire: encode %s: %w", typ, err)
	}
	env, err := json.Marshal(Envelope{V: Version, Type: typ, Body: b})
	if err != nil {
		return fmt.Errorf("wire: encode %s: %w", typ, err)
	}
	if len(env) > MaxFrame {
		return fmt.Errorf("wire: %s message of %d bytes is over the %d-byte frame limit", typ, len(env), MaxFrame)
	}
	frame := make([]byte, 4, 4+len(env))
	binary.BigEndian.PutUint32(frame, uint32(len(env)))
	_, err = w.Write(append(frame, env...))
	return err
}

// ErrVersion is wrapped by Read's error for a frame of another version.
var ErrVersion = errors.New("wire: protocol version mismatch")

// Read reads one frame. io.EOF means the stream ended between frames.
func Read(r io.Reader) (Envelope, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Envelope{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > MaxFrame {
		return Envelope{}, fmt.Errorf("wire: frame of %d bytes (limit %d)", n, MaxFrame)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return Envelope{}, fmt.Errorf("wire: frame cut short: %w", io.ErrUnexpectedEOF)
	}
	var env Envelope
	if err := json.Unmarshal(buf, &env); err != nil {
		return Envelope{}, fmt.Errorf("wire: malformed frame: %w", err)
	}
	if env.V != Version {
		return Envelope{}, fmt.Errorf("%w: peer speaks version %d, this build %d; run the same release on every node", ErrVersion, env.V, Version)
	}
	if env.Type == "" {
		return Envelope{}, errors.New("wire: frame without a type")
	}
	return env, nil
}

// Decode decodes env's body into v, which must be the body type of
// env.Type.
func (env Envelope) Decode(v any) error {
	if err := json.Unmarshal(env.Body, v); err != nil {
		return fmt.Errorf("wire: malformed %s body: %w", env.Type, err)
	}
	return nil
}

// Expect reads one frame of type typ into v; a frame of type "error" is
// returned as an error with its message.
func Expect(r io.Reader, typ string, v any) error {
	env, err := Read(r)
	if err != nil {
		return err
	}
	if env.Type == TypeError {
		var e Error
		if err := env.Decode(&e); err != nil {
			return err
		}
		return fmt.Errorf("refused: %s", e.Msg)
	}
	if env.Type != typ {
		return fmt.Errorf("wire: got a %s message, want %s", env.Type, typ)
	}
	return env.Decode(v)
}

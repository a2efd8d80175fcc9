package grid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/wasmgrid/wasmgrid/core"
	"github.com/wasmgrid/wasmgrid/internal/tokens"
)

// The coordinators' replicated log carries two kinds of entry:
//
//   - a core command (core.Command's JSON, which starts with '{'): the job
//     state, applied to the pure core;
//   - a grid command: the byte 'G' followed by gridCommand's JSON, the
//     state the shell keeps beside the core: the API's tokens and the
//     modules' records.
//
// Core commands keep the encoding they had before grid commands existed,
// so a log written by an earlier release replays unchanged, and the core
// stays pure scheduling. Snapshots are gridSnapshot's JSON: the core's
// snapshot, the token records and the module records at one index.

// gridEntryTag starts a grid command in the log.
const gridEntryTag = 'G'

// gridCommandVersion is the format of a grid command; a server refuses
// (skips, loudly) another.
const gridCommandVersion = 1

// gridCommand is one change of the shell's replicated state: exactly one
// of its fields beside V is set.
type gridCommand struct {
	V      int             `json:"v"`
	Token  *tokens.Command `json:"token,omitempty"`
	Module *moduleCommand  `json:"module,omitempty"`
}

// moduleCommand records a module in the replicated state, or drops a
// tenant's ownership of one: only hashes, sizes and owners, never bytes.
type moduleCommand struct {
	// Stored: a majority of the servers hold the module's file, fsynced,
	// and Tenant owns it.
	Stored *moduleRef `json:"stored,omitempty"`
	// Deleted: Tenant no longer owns it; a file nobody owns goes when no
	// running job uses it.
	Deleted *moduleRef `json:"deleted,omitempty"`
}

// moduleRef names a module and its owner.
type moduleRef struct {
	Hash   string `json:"hash"`
	Size   int64  `json:"size,omitempty"`
	Tenant string `json:"tenant"`
}

func (m moduleRef) check() error {
	switch {
	case !validHash(m.Hash) || strings.ToLower(m.Hash) != m.Hash:
		return fmt.Errorf("module hash %q: not 64 lower-case hex digits", m.Hash)
	case m.Size < 0 || m.Size > maxModuleFetch:
		return fmt.Errorf("module size %d", m.Size)
	case len(m.Tenant) > 200:
		return errors.New("a tenant name longer than 200 bytes")
	}
	return nil
}

func (cmd moduleCommand) check() error {
	switch {
	case (cmd.Stored == nil) == (cmd.Deleted == nil):
		return errors.New("a module command sets one of stored and deleted")
	case cmd.Stored != nil:
		return cmd.Stored.check()
	default:
		return cmd.Deleted.check()
	}
}

// encode is the command as a log entry.
func (cmd gridCommand) encode() ([]byte, error) {
	cmd.V = gridCommandVersion
	if err := cmd.check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("grid: encode a grid command: %w", err)
	}
	return append([]byte{gridEntryTag}, b...), nil
}

func (cmd gridCommand) check() error {
	if cmd.V != gridCommandVersion {
		return fmt.Errorf("grid command format %d, this build reads %d: run the same release on every server", cmd.V, gridCommandVersion)
	}
	switch {
	case (cmd.Token == nil) == (cmd.Module == nil):
		return errors.New("a grid command sets one of token and module")
	case cmd.Token != nil:
		return cmd.Token.Check()
	default:
		return cmd.Module.check()
	}
}

// kind names the command, for logs.
func (cmd gridCommand) kind() string {
	switch {
	case cmd.Token != nil && cmd.Token.Create != nil && cmd.Token.Revoke != nil:
		return "token_rotate"
	case cmd.Token != nil && cmd.Token.Create != nil:
		return "token_create"
	case cmd.Token != nil && cmd.Token.Revoke != nil:
		return "token_revoke"
	case cmd.Token != nil:
		return "token_import"
	case cmd.Module != nil && cmd.Module.Stored != nil:
		return "module_stored"
	default:
		return "module_deleted"
	}
}

// logEntry is a decoded entry of the log: one of the two is set.
type logEntry struct {
	core *core.Command
	grid *gridCommand
}

// decodeEntry decodes an entry of the replicated log.
func decodeEntry(b []byte) (logEntry, error) {
	if len(b) > 0 && b[0] == gridEntryTag {
		if len(b) > maxGridCommand {
			return logEntry{}, fmt.Errorf("grid: a grid command of %d bytes is over the %d-byte limit", len(b), maxGridCommand)
		}
		dec := json.NewDecoder(bytes.NewReader(b[1:]))
		dec.DisallowUnknownFields()
		var cmd gridCommand
		if err := dec.Decode(&cmd); err != nil {
			return logEntry{}, fmt.Errorf("grid: malformed grid command: %w", err)
		}
		if dec.More() {
			return logEntry{}, errors.New("grid: malformed grid command: data after it")
		}
		if err := cmd.check(); err != nil {
			return logEntry{}, fmt.Errorf("grid: %w", err)
		}
		return logEntry{grid: &cmd}, nil
	}
	cmd, err := core.DecodeCommand(b)
	if err != nil {
		return logEntry{}, err
	}
	return logEntry{core: &cmd}, nil
}

// maxGridCommand bounds a grid command: an import of the largest token
// file fits, well below the log's 16 MiB.
const maxGridCommand = 8 << 20

// gridSnapshotVersion is the format of gridSnapshot.
const gridSnapshotVersion = 1

// gridSnapshot is the coordinator's snapshot: the core's, and the
// shell's replicated state at the same index. A snapshot without "grid"
// is a core snapshot of an earlier release, restored as it is.
type gridSnapshot struct {
	Grid    int             `json:"grid"`
	Core    json.RawMessage `json:"core"`
	Tokens  []tokens.Record `json:"tokens"`
	Modules []moduleRecord  `json:"modules"`
}

// moduleRecord is a module in the replicated state.
type moduleRecord struct {
	Hash   string   `json:"hash"`
	Size   int64    `json:"size"`
	Owners []string `json:"owners"`
}

// decodeSnapshot decodes a coordinator's snapshot and checks the shell's
// part of it; legacy is a core snapshot of an earlier release.
func decodeSnapshot(b []byte) (snap gridSnapshot, legacy bool, err error) {
	if err := json.Unmarshal(b, &snap); err != nil {
		return gridSnapshot{}, false, fmt.Errorf("grid: the snapshot does not decode: %w", err)
	}
	if snap.Grid == 0 {
		return gridSnapshot{Core: b}, true, nil
	}
	if snap.Grid != gridSnapshotVersion {
		return gridSnapshot{}, false, fmt.Errorf("grid: snapshot format %d, this build reads %d: run the release that wrote it", snap.Grid, gridSnapshotVersion)
	}
	ids := map[string]bool{}
	for i, t := range snap.Tokens {
		if err := t.Check(); err != nil {
			return gridSnapshot{}, false, fmt.Errorf("grid: snapshot: token %d: %w", i, err)
		}
		if ids[t.ID] {
			return gridSnapshot{}, false, fmt.Errorf("grid: snapshot: token id %q twice", t.ID)
		}
		ids[t.ID] = true
	}
	hashes := map[string]bool{}
	for _, m := range snap.Modules {
		if err := (moduleRef{Hash: m.Hash, Size: m.Size}).check(); err != nil {
			return gridSnapshot{}, false, fmt.Errorf("grid: snapshot: %w", err)
		}
		if hashes[m.Hash] || len(m.Owners) == 0 || !slices.IsSorted(m.Owners) || len(slices.Compact(slices.Clone(m.Owners))) != len(m.Owners) {
			return gridSnapshot{}, false, fmt.Errorf("grid: snapshot: module %s listed twice, or its owners (%s) not a sorted set", m.Hash, strings.Join(m.Owners, ", "))
		}
		hashes[m.Hash] = true
	}
	return snap, false, nil
}

// applyGrid applies a grid command to the shell's replicated state; the
// core is held (a deletion's sweep reads it).
func (c *coordinator) applyGrid(cmd gridCommand) {
	switch {
	case cmd.Token != nil:
		c.tokens.Apply(*cmd.Token)
	case cmd.Module.Stored != nil:
		m := cmd.Module.Stored
		c.modules.own(m.Tenant, m.Hash, m.Size)
		c.wantModule(m.Hash)
	case cmd.Module.Deleted != nil:
		m := cmd.Module.Deleted
		if _, orphan := c.modules.disown(m.Tenant, m.Hash); orphan {
			c.modules.sweep(modulesInUse(c.core))
		}
	}
}

// afterCore keeps the modules in step with the job state on every server:
// a submission's modules are fetched if this server lacks them (the
// leader had them), and a job's end lets orphan modules' files go.
func (c *coordinator) afterCore(cmd core.Command, ds []core.Decision) {
	if cmd.Submit != nil {
		var p jobPayload
		if json.Unmarshal(cmd.Submit.Payload, &p) == nil {
			for _, m := range p.Modules {
				c.wantModule(m.Hash)
			}
		}
	}
	for _, d := range ds {
		if _, ok := d.(core.Ended); ok {
			c.modules.sweep(modulesInUse(c.core))
			return
		}
	}
}

// wantModule tells the fetcher of a module this server lacks.
func (c *coordinator) wantModule(hash string) {
	if c.missing != nil && validHash(hash) && !c.modules.has(hash) {
		c.missing(hash)
	}
}

// wantModules asks for every module the replicated state names that this
// server lacks: the records', and running jobs'. The core is held.
func (c *coordinator) wantModules() {
	if c.missing == nil {
		return
	}
	for _, h := range c.modules.hashes() {
		c.wantModule(h)
	}
	for h := range modulesInUse(c.core) {
		c.wantModule(h)
	}
}

// modulesInUse is the modules of the jobs that have not ended.
func modulesInUse(cr *core.Core) map[string]bool {
	inUse := map[string]bool{}
	for _, ji := range cr.Jobs() {
		if ji.State != core.Running && ji.State != core.Committing {
			continue
		}
		var pl jobPayload
		if json.Unmarshal(ji.Payload, &pl) != nil {
			continue
		}
		for _, m := range pl.Modules {
			inUse[m.Hash] = true
		}
	}
	return inUse
}

// proposeGrid commits a grid command to the log: it returns once this
// server applied it, or with the log's error (not the leader, no quorum).
func (c *coordinator) proposeGrid(ctx context.Context, cmd gridCommand) error {
	b, err := cmd.encode()
	if err != nil {
		return err
	}
	return c.propose(ctx, b, cmd.kind())
}

package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
)

// Record is a token as the store keeps it: its hash, not the token.
type Record struct {
	api.TokenInfo
	SHA256 string `json:"sha256"`
}

// legacyFile is the token file of earlier releases, version 1: the leader
// imports it into the replicated state (Legacy).
type legacyFile struct {
	Version int      `json:"version"`
	Tokens  []Record `json:"tokens"`
}

// MaxTokens bounds the tokens a store holds, revoked ones included: every
// request compares its token with each of them.
const MaxTokens = 10000

// decodeFile reads a token store file and checks every record.
func decodeFile(b []byte) (*legacyFile, error) {
	var f legacyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("version %d: this coordinator reads version 1", f.Version)
	}
	if len(f.Tokens) > MaxTokens {
		return nil, fmt.Errorf("%d tokens: at most %d", len(f.Tokens), MaxTokens)
	}
	ids := map[string]bool{}
	for i, t := range f.Tokens {
		if err := t.Check(); err != nil {
			return nil, fmt.Errorf("token %d (%q): %w", i, t.ID, err)
		}
		if ids[t.ID] {
			return nil, fmt.Errorf("token id %q is listed twice", t.ID)
		}
		ids[t.ID] = true
	}
	return &f, nil
}

// Check says what makes t not a well-formed record.
func (t Record) Check() error {
	switch {
	case t.ID == "" || len(t.ID) > 200:
		return errors.New("no id, or one longer than 200 bytes")
	case !t.Role.Valid():
		return fmt.Errorf("role %q: use admin, submit or read-only", t.Role)
	case (t.Role == api.RoleAdmin) != (t.Tenant == ""):
		return errors.New("an admin token has no tenant, and any other has one")
	case !validHash(t.SHA256):
		return errors.New("sha256 must be 64 hex digits")
	}
	return nil
}

// Store holds the API's tokens: the bootstrap tokens of this
// server's config, and the replicated records: tokens created at run time
// and revocations, which reach the store only through the coordinators'
// replicated log (Command, applied by every server in log order) and
// are part of its snapshots. A record holds a token's hash, never the
// token. A bootstrap token is live while the config names it with the
// same hash and no record revokes that hash; a new hash in the config is
// a new token, and a token gone from the config is gone. A revocation
// takes effect at the next request on every server that applied it.
type Store struct {
	now func() time.Time

	mu        sync.Mutex // protects the fields below
	bootstrap []Record
	records   []Record            // replicated: created tokens, revoked ones, bootstrap revocations
	view      []Record            // what lookups see: bootstrap merged with records
	hashes    [][sha256.Size]byte // view[i]'s hash, decoded
}

// BootstrapID is the id of a config file's token: the admin's, or a
// tenant's.
func BootstrapID(tenant string) string {
	if tenant == "" {
		return "bootstrap.admin"
	}
	return "bootstrap.tenant." + tenant
}

// Bootstrap is the record of a config file's token: the admin's (tenant
// ""), or a tenant's, which submits; hash is its sha256 as the config
// has it, in either case.
func Bootstrap(tenant, hash string) Record {
	if tenant == "" {
		return Record{TokenInfo: api.TokenInfo{ID: BootstrapID(""), Role: api.RoleAdmin, Bootstrap: true}, SHA256: lower(hash)}
	}
	return Record{TokenInfo: api.TokenInfo{ID: BootstrapID(tenant), Tenant: tenant, Role: api.RoleSubmit, Bootstrap: true}, SHA256: lower(hash)}
}

// NewStore is a store with the config's bootstrap tokens and no
// replicated record yet: the log's replay brings them.
func NewStore(bootstrap []Record, now func() time.Time) *Store {
	s := &Store{now: now, bootstrap: slices.Clone(bootstrap)}
	s.index()
	return s
}

func lower(h string) string {
	b, err := hex.DecodeString(h)
	if err != nil {
		return h
	}
	return hex.EncodeToString(b)
}

// index merges the bootstrap tokens with the records into the view and
// decodes its hashes; with mu held (or before sharing).
func (s *Store) index() {
	s.view = s.view[:0]
	for _, bt := range s.bootstrap {
		i := slices.IndexFunc(s.records, func(r Record) bool { return r.Bootstrap && r.ID == bt.ID && r.SHA256 == bt.SHA256 })
		if i >= 0 && s.records[i].Revoked != nil {
			bt.Revoked = s.records[i].Revoked
		}
		s.view = append(s.view, bt)
	}
	for _, r := range s.records {
		if !r.Bootstrap {
			s.view = append(s.view, r)
		}
	}
	s.hashes = make([][sha256.Size]byte, len(s.view))
	for i, r := range s.view {
		hex.Decode(s.hashes[i][:], []byte(r.SHA256))
	}
}

// Lookup finds the live token whose hash is token's. It compares the hash
// with every record's in constant time, so the time it takes says nothing
// of how close a guess came.
func (s *Store) Lookup(token string) (api.TokenInfo, bool) {
	sum := sha256.Sum256([]byte(token))
	s.mu.Lock()
	defer s.mu.Unlock()
	found := -1
	for i := range s.hashes {
		if subtle.ConstantTimeCompare(s.hashes[i][:], sum[:]) == 1 {
			found = i
		}
	}
	if found < 0 || s.view[found].Revoked != nil {
		return api.TokenInfo{}, false
	}
	return s.view[found].TokenInfo, true
}

// Find is the token id names, as lookups see it.
func (s *Store) Find(id string) (Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.view, func(r Record) bool { return r.ID == id })
	if i < 0 {
		return Record{}, false
	}
	return s.view[i], true
}

// Live reports whether the token id names is still valid.
func (s *Store) Live(id string) bool {
	r, ok := s.Find(id)
	return ok && r.Revoked == nil
}

// List is every token, the config's first, then in creation order.
func (s *Store) List() []api.TokenInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]api.TokenInfo, len(s.view))
	for i, r := range s.view {
		out[i] = r.TokenInfo
	}
	return out
}

// ErrNoToken is a token id the store does not hold; ErrRevoked one that
// cannot be rotated; ErrTokenCap a store that is full.
var (
	ErrNoToken  = errors.New("no such token")
	ErrRevoked  = errors.New("the token is revoked: create a new one")
	ErrTokenCap = fmt.Errorf("the store holds %d tokens, its maximum (revoked ones count)", MaxTokens)
)

// CreateCommand makes a token for tenant with role: the command that
// stores its hash, and the token, which the caller shows once.
func (s *Store) CreateCommand(tenant string, role api.Role) (Command, api.NewToken, error) {
	rec := Record{TokenInfo: api.TokenInfo{ID: "tok-" + randomHex(8), Tenant: tenant, Role: role, Created: s.now().UTC()}}
	secret := "wgt_" + randomHex(32)
	rec.SHA256 = Hash(secret)
	if err := rec.Check(); err != nil {
		return Command{}, api.NewToken{}, err
	}
	s.mu.Lock()
	full := len(s.records) >= MaxTokens
	s.mu.Unlock()
	if full {
		return Command{}, api.NewToken{}, ErrTokenCap
	}
	return Command{Create: &rec}, api.NewToken{TokenInfo: rec.TokenInfo, Token: secret}, nil
}

// RevokeCommand is the command that revokes the token id names, or
// nothing when it is revoked already.
func (s *Store) RevokeCommand(id string) (*Record, error) {
	r, ok := s.Find(id)
	if !ok {
		return nil, ErrNoToken
	}
	if r.Revoked != nil {
		return nil, nil
	}
	t := s.now().UTC()
	r.Revoked = &t
	return &r, nil
}

// Apply applies a committed token command: every server applies the same
// commands in the same order, so every server holds the same records. A
// revocation is never refused; a creation past MaxTokens, or of an id or
// hash the store holds, is ignored (the proposer checks first, and finds
// the token absent).
func (s *Store) Apply(cmd Command) {
	s.mu.Lock()
	defer s.mu.Unlock()
	add := func(r Record) {
		if len(s.records) >= MaxTokens && r.Revoked == nil {
			return
		}
		if slices.ContainsFunc(s.records, func(o Record) bool { return o.ID == r.ID || o.SHA256 == r.SHA256 && !o.Bootstrap }) {
			return
		}
		s.records = append(s.records, r)
	}
	if cmd.Create != nil {
		add(*cmd.Create)
	}
	if r := cmd.Revoke; r != nil {
		i := slices.IndexFunc(s.records, func(o Record) bool { return o.ID == r.ID && o.SHA256 == r.SHA256 })
		switch {
		case i >= 0 && s.records[i].Revoked == nil:
			s.records[i].Revoked = r.Revoked
		case i < 0 && r.Bootstrap:
			s.records = append(s.records, *r)
		}
	}
	for _, r := range cmd.Import {
		add(r)
	}
	s.index()
}

// Snapshot is the replicated records; Restore replaces them.
func (s *Store) Snapshot() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.records)
}

// Restore replaces the replicated records with records.
func (s *Store) Restore(records []Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = slices.Clone(records)
	s.index()
}

// Command changes the replicated token records: Create adds a token
// (its hash), Revoke revokes one (for a bootstrap token, the config's
// record, revoked), and both at once rotate a token. Import adds the
// records of a token file of an earlier release, once.
type Command struct {
	Create *Record  `json:"create,omitempty"`
	Revoke *Record  `json:"revoke,omitempty"`
	Import []Record `json:"import,omitempty"`
}

// Check refuses a command that would put anything but a well-formed
// record into the store.
func (cmd Command) Check() error {
	if cmd.Create == nil && cmd.Revoke == nil && cmd.Import == nil {
		return errors.New("an empty token command")
	}
	if len(cmd.Import) > MaxTokens {
		return fmt.Errorf("an import of %d tokens: at most %d", len(cmd.Import), MaxTokens)
	}
	if r := cmd.Create; r != nil {
		if err := r.Check(); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		if r.Bootstrap || r.Revoked != nil {
			return errors.New("create: a created token is neither a bootstrap token nor revoked")
		}
	}
	if r := cmd.Revoke; r != nil {
		if err := r.Check(); err != nil {
			return fmt.Errorf("revoke: %w", err)
		}
		if r.Revoked == nil {
			return errors.New("revoke: no revocation time")
		}
	}
	for i, r := range cmd.Import {
		if err := r.Check(); err != nil {
			return fmt.Errorf("import %d: %w", i, err)
		}
	}
	return nil
}

// Legacy reads the token file an earlier release kept in the state
// directory (none: nil): the leader imports its records into the
// replicated state once, so that no token created or revoked before the
// upgrade is forgotten.
func Legacy(path string) ([]Record, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f, err := decodeFile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (move it away to start without its tokens: every token created or revoked in it is then forgotten)", path, err)
	}
	return f.Tokens, nil
}

// Hash is the hex sha256 of a bearer token, as configs and records
// store it.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func validHash(h string) bool {
	b, err := hex.DecodeString(h)
	return err == nil && len(b) == sha256.Size
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("grid: no randomness for a token: %v", err))
	}
	return hex.EncodeToString(b)
}

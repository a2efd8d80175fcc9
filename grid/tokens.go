package grid

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
)

// tokenRecord is a token as the store keeps it: its hash, not the token.
type tokenRecord struct {
	api.TokenInfo
	SHA256 string `json:"sha256"`
}

// tokenFile is the token file of earlier releases, version 1: the leader
// imports it into the replicated state (legacyTokens).
type tokenFile struct {
	Version int           `json:"version"`
	Tokens  []tokenRecord `json:"tokens"`
}

// maxTokens bounds the tokens a store holds, revoked ones included: every
// request compares its token with each of them.
const maxTokens = 10000

// decodeTokenFile reads a token store file and checks every record.
func decodeTokenFile(b []byte) (*tokenFile, error) {
	var f tokenFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("version %d: this coordinator reads version 1", f.Version)
	}
	if len(f.Tokens) > maxTokens {
		return nil, fmt.Errorf("%d tokens: at most %d", len(f.Tokens), maxTokens)
	}
	ids := map[string]bool{}
	for i, t := range f.Tokens {
		if err := t.check(); err != nil {
			return nil, fmt.Errorf("token %d (%q): %w", i, t.ID, err)
		}
		if ids[t.ID] {
			return nil, fmt.Errorf("token id %q is listed twice", t.ID)
		}
		ids[t.ID] = true
	}
	return &f, nil
}

func (t tokenRecord) check() error {
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

// tokenStore holds the API's tokens: the bootstrap tokens of this
// server's config, and the replicated records: tokens created at run time
// and revocations, which reach the store only through the coordinators'
// replicated log (tokenCommand, applied by every server in log order) and
// are part of its snapshots. A record holds a token's hash, never the
// token. A bootstrap token is live while the config names it with the
// same hash and no record revokes that hash; a new hash in the config is
// a new token, and a token gone from the config is gone. A revocation
// takes effect at the next request on every server that applied it.
type tokenStore struct {
	now func() time.Time

	mu        sync.Mutex // protects the fields below
	bootstrap []tokenRecord
	records   []tokenRecord       // replicated: created tokens, revoked ones, bootstrap revocations
	view      []tokenRecord       // what lookups see: bootstrap merged with records
	hashes    [][sha256.Size]byte // view[i]'s hash, decoded
}

// bootstrapID is the id of a config file's token: the admin's, or a
// tenant's.
func bootstrapID(tenant string) string {
	if tenant == "" {
		return "bootstrap.admin"
	}
	return "bootstrap.tenant." + tenant
}

// bootstrapTokens are the config's tokens as records.
func bootstrapTokens(cfg CoordinatorConfig) []tokenRecord {
	var out []tokenRecord
	if cfg.AdminTokenSHA256 != "" {
		out = append(out, tokenRecord{TokenInfo: api.TokenInfo{ID: bootstrapID(""), Role: api.RoleAdmin, Bootstrap: true}, SHA256: lower(cfg.AdminTokenSHA256)})
	}
	for _, t := range cfg.Tenants {
		if t.TokenSHA256 == "" {
			continue // a tenant only the admin submits for (and tokens made at run time)
		}
		out = append(out, tokenRecord{TokenInfo: api.TokenInfo{ID: bootstrapID(t.Name), Tenant: t.Name, Role: api.RoleSubmit, Bootstrap: true}, SHA256: lower(t.TokenSHA256)})
	}
	return out
}

// newTokenStore is a store with the config's bootstrap tokens and no
// replicated record yet: the log's replay brings them.
func newTokenStore(bootstrap []tokenRecord, now func() time.Time) *tokenStore {
	s := &tokenStore{now: now, bootstrap: slices.Clone(bootstrap)}
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
func (s *tokenStore) index() {
	s.view = s.view[:0]
	for _, bt := range s.bootstrap {
		i := slices.IndexFunc(s.records, func(r tokenRecord) bool { return r.Bootstrap && r.ID == bt.ID && r.SHA256 == bt.SHA256 })
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

// lookup finds the live token whose hash is token's. It compares the hash
// with every record's in constant time, so the time it takes says nothing
// of how close a guess came.
func (s *tokenStore) lookup(token string) (api.TokenInfo, bool) {
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

// find is the token id names, as lookups see it.
func (s *tokenStore) find(id string) (tokenRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.view, func(r tokenRecord) bool { return r.ID == id })
	if i < 0 {
		return tokenRecord{}, false
	}
	return s.view[i], true
}

// live reports whether the token id names is still valid.
func (s *tokenStore) live(id string) bool {
	r, ok := s.find(id)
	return ok && r.Revoked == nil
}

// list is every token, the config's first, then in creation order.
func (s *tokenStore) list() []api.TokenInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]api.TokenInfo, len(s.view))
	for i, r := range s.view {
		out[i] = r.TokenInfo
	}
	return out
}

// errNoToken is a token id the store does not hold; errRevoked one that
// cannot be rotated; errTokenCap a store that is full.
var (
	errNoToken  = errors.New("no such token")
	errRevoked  = errors.New("the token is revoked: create a new one")
	errTokenCap = fmt.Errorf("the store holds %d tokens, its maximum (revoked ones count)", maxTokens)
)

// newTokenCommand makes a token for tenant with role: the command that
// stores its hash, and the token, which the caller shows once.
func (s *tokenStore) newTokenCommand(tenant string, role api.Role) (tokenCommand, api.NewToken, error) {
	rec := tokenRecord{TokenInfo: api.TokenInfo{ID: "tok-" + randomHex(8), Tenant: tenant, Role: role, Created: s.now().UTC()}}
	secret := "wgt_" + randomHex(32)
	rec.SHA256 = HashToken(secret)
	if err := rec.check(); err != nil {
		return tokenCommand{}, api.NewToken{}, err
	}
	s.mu.Lock()
	full := len(s.records) >= maxTokens
	s.mu.Unlock()
	if full {
		return tokenCommand{}, api.NewToken{}, errTokenCap
	}
	return tokenCommand{Create: &rec}, api.NewToken{TokenInfo: rec.TokenInfo, Token: secret}, nil
}

// revokeCommand is the command that revokes the token id names, or
// nothing when it is revoked already.
func (s *tokenStore) revokeCommand(id string) (*tokenRecord, error) {
	r, ok := s.find(id)
	if !ok {
		return nil, errNoToken
	}
	if r.Revoked != nil {
		return nil, nil
	}
	t := s.now().UTC()
	r.Revoked = &t
	return &r, nil
}

// apply applies a committed token command: every server applies the same
// commands in the same order, so every server holds the same records. A
// revocation is never refused; a creation past maxTokens, or of an id or
// hash the store holds, is ignored (the proposer checks first, and finds
// the token absent).
func (s *tokenStore) apply(cmd tokenCommand) {
	s.mu.Lock()
	defer s.mu.Unlock()
	add := func(r tokenRecord) {
		if len(s.records) >= maxTokens && r.Revoked == nil {
			return
		}
		if slices.ContainsFunc(s.records, func(o tokenRecord) bool { return o.ID == r.ID || o.SHA256 == r.SHA256 && !o.Bootstrap }) {
			return
		}
		s.records = append(s.records, r)
	}
	if cmd.Create != nil {
		add(*cmd.Create)
	}
	if r := cmd.Revoke; r != nil {
		i := slices.IndexFunc(s.records, func(o tokenRecord) bool { return o.ID == r.ID && o.SHA256 == r.SHA256 })
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

// snapshot is the replicated records; restore replaces them.
func (s *tokenStore) snapshot() []tokenRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.records)
}

func (s *tokenStore) restore(records []tokenRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = slices.Clone(records)
	s.index()
}

// tokenCommand changes the replicated token records: Create adds a token
// (its hash), Revoke revokes one (for a bootstrap token, the config's
// record, revoked), and both at once rotate a token. Import adds the
// records of a token file of an earlier release, once.
type tokenCommand struct {
	Create *tokenRecord  `json:"create,omitempty"`
	Revoke *tokenRecord  `json:"revoke,omitempty"`
	Import []tokenRecord `json:"import,omitempty"`
}

// check refuses a command that would put anything but a well-formed
// record into the store.
func (cmd tokenCommand) check() error {
	if cmd.Create == nil && cmd.Revoke == nil && cmd.Import == nil {
		return errors.New("an empty token command")
	}
	if len(cmd.Import) > maxTokens {
		return fmt.Errorf("an import of %d tokens: at most %d", len(cmd.Import), maxTokens)
	}
	if r := cmd.Create; r != nil {
		if err := r.check(); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		if r.Bootstrap || r.Revoked != nil {
			return errors.New("create: a created token is neither a bootstrap token nor revoked")
		}
	}
	if r := cmd.Revoke; r != nil {
		if err := r.check(); err != nil {
			return fmt.Errorf("revoke: %w", err)
		}
		if r.Revoked == nil {
			return errors.New("revoke: no revocation time")
		}
	}
	for i, r := range cmd.Import {
		if err := r.check(); err != nil {
			return fmt.Errorf("import %d: %w", i, err)
		}
	}
	return nil
}

// legacyTokens reads the token file an earlier release kept in the state
// directory (none: nil): the leader imports its records into the
// replicated state once, so that no token created or revoked before the
// upgrade is forgotten.
func legacyTokens(path string) ([]tokenRecord, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f, err := decodeTokenFile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (move it away to start without its tokens: every token created or revoked in it is then forgotten)", path, err)
	}
	return f.Tokens, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("grid: no randomness for a token: %v", err))
	}
	return hex.EncodeToString(b)
}

// importLegacyTokens commits the records of the token file an earlier
// release kept in this server's state directory to the log, once: after
// an upgrade, no token created or revoked before it is forgotten (a
// revoked token must not come back). The file is then renamed aside; an
// import repeated after a crash adds nothing (records are added by id).
func (c *Coordinator) importLegacyTokens(ctx context.Context) {
	path := filepath.Join(c.cfg.StateDir, "coordinator", "tokens.json")
	recs, err := legacyTokens(path)
	if err != nil {
		c.logger.Error("the token file of an earlier release cannot be imported: its tokens are not known", "err", err)
		return
	}
	if recs == nil {
		return
	}
	for chunk := range slices.Chunk(recs, 1000) {
		if err := c.coord.proposeGrid(ctx, gridCommand{Token: &tokenCommand{Import: chunk}}); err != nil {
			c.logger.Error("the token file of an earlier release was not imported: it is imported when this server leads again", "err", err)
			return
		}
	}
	if err := os.Rename(path, path+".imported"); err != nil {
		c.logger.Warn("the imported token file stays", "err", err)
	}
	c.logger.Info("the token file of an earlier release was imported into the replicated state", "tokens", len(recs))
}

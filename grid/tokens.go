package grid

import (
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

// tokenFile is the token store's file, version 1.
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

// tokenStore holds the API's tokens: bootstrap tokens from the config and
// those created at run time, durable in a JSON file of hashes in the
// coordinator's state directory. A revocation takes effect at the next
// request.
type tokenStore struct {
	path string
	now  func() time.Time

	mu      sync.Mutex // protects records and hashes, and orders writes of the file
	records []tokenRecord
	hashes  [][sha256.Size]byte // records[i]'s hash, decoded
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
		out = append(out, tokenRecord{TokenInfo: api.TokenInfo{ID: bootstrapID(""), Role: api.RoleAdmin, Bootstrap: true}, SHA256: cfg.AdminTokenSHA256})
	}
	for _, t := range cfg.Tenants {
		if t.TokenSHA256 == "" {
			continue // a tenant only the admin submits for (and tokens made at run time)
		}
		out = append(out, tokenRecord{TokenInfo: api.TokenInfo{ID: bootstrapID(t.Name), Tenant: t.Name, Role: api.RoleSubmit, Bootstrap: true}, SHA256: t.TokenSHA256})
	}
	return out
}

// openTokenStore reads the store at path (none yet is an empty store) and
// merges the config's bootstrap tokens: one whose hash is unchanged keeps
// its state (a revoked one stays revoked), a changed one is a new token,
// and one no longer in the config is revoked. A file that cannot be read
// is an error: starting without it would forget revocations.
func openTokenStore(path string, bootstrap []tokenRecord, now func() time.Time) (*tokenStore, error) {
	s := &tokenStore{path: path, now: now}
	removeTemporaries(filepath.Dir(path), ".tokens-")
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("grid: token store: %w", err)
	default:
		f, err := decodeTokenFile(b)
		if err != nil {
			return nil, fmt.Errorf("grid: token store %s: %w (move it away to start with the config's tokens only: every token created since is then lost)", path, err)
		}
		s.records = f.Tokens
	}
	changed := false
	t := now().UTC()
	for _, bt := range bootstrap {
		bt.SHA256 = lower(bt.SHA256)
		i := slices.IndexFunc(s.records, func(r tokenRecord) bool { return r.ID == bt.ID })
		switch {
		case i < 0:
			bt.Created = t
			s.records = append(s.records, bt)
			changed = true
		case s.records[i].SHA256 != bt.SHA256 || s.records[i].Role != bt.Role || s.records[i].Tenant != bt.Tenant:
			bt.Created = t
			s.records[i] = bt
			changed = true
		}
	}
	for i, r := range s.records {
		gone := !slices.ContainsFunc(bootstrap, func(bt tokenRecord) bool { return bt.ID == r.ID })
		if r.Bootstrap && gone && r.Revoked == nil {
			s.records[i].Revoked = &t
			changed = true
		}
	}
	s.index()
	if changed {
		if err := s.save(s.records); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func lower(h string) string {
	b, err := hex.DecodeString(h)
	if err != nil {
		return h
	}
	return hex.EncodeToString(b)
}

// index decodes the records' hashes; with mu held (or before sharing).
func (s *tokenStore) index() {
	s.hashes = make([][sha256.Size]byte, len(s.records))
	for i, r := range s.records {
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
	if found < 0 || s.records[found].Revoked != nil {
		return api.TokenInfo{}, false
	}
	return s.records[found].TokenInfo, true
}

// live reports whether the token id names is still valid.
func (s *tokenStore) live(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.records, func(r tokenRecord) bool { return r.ID == id })
	return i >= 0 && s.records[i].Revoked == nil
}

// list is every token, in creation order.
func (s *tokenStore) list() []api.TokenInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]api.TokenInfo, len(s.records))
	for i, r := range s.records {
		out[i] = r.TokenInfo
	}
	return out
}

// create makes a token for tenant with role, and stores its hash.
func (s *tokenStore) create(tenant string, role api.Role) (api.NewToken, error) {
	rec := tokenRecord{TokenInfo: api.TokenInfo{ID: "tok-" + randomHex(8), Tenant: tenant, Role: role, Created: s.now().UTC()}}
	secret := "wgt_" + randomHex(32)
	rec.SHA256 = HashToken(secret)
	if err := rec.check(); err != nil {
		return api.NewToken{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.records) >= maxTokens {
		return api.NewToken{}, fmt.Errorf("the store holds %d tokens, its maximum (revoked ones count)", maxTokens)
	}
	next := append(slices.Clip(s.records), rec)
	if err := s.save(next); err != nil {
		return api.NewToken{}, err
	}
	s.records = next
	s.index()
	return api.NewToken{TokenInfo: rec.TokenInfo, Token: secret}, nil
}

// errNoToken is a token id the store does not hold; errRevoked one that
// cannot be rotated.
var (
	errNoToken = errors.New("no such token")
	errRevoked = errors.New("the token is revoked: create a new one")
)

// revoke ends the token id names: its next request is refused (401). A
// revocation that could not be saved still holds until the coordinator
// restarts, and the error says so.
func (s *tokenStore) revoke(id string) (api.TokenInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.records, func(r tokenRecord) bool { return r.ID == id })
	if i < 0 {
		return api.TokenInfo{}, errNoToken
	}
	if s.records[i].Revoked == nil {
		t := s.now().UTC()
		s.records[i].Revoked = &t
		if err := s.save(s.records); err != nil {
			return s.records[i].TokenInfo, fmt.Errorf("the token is revoked until the coordinator restarts, but the revocation could not be saved: %w", err)
		}
	}
	return s.records[i].TokenInfo, nil
}

// rotate replaces the token id names by a new one for the same tenant and
// role, and revokes it.
func (s *tokenStore) rotate(id string) (api.NewToken, error) {
	s.mu.Lock()
	i := slices.IndexFunc(s.records, func(r tokenRecord) bool { return r.ID == id })
	if i < 0 {
		s.mu.Unlock()
		return api.NewToken{}, errNoToken
	}
	old := s.records[i]
	s.mu.Unlock()
	if old.Revoked != nil {
		return api.NewToken{}, errRevoked
	}
	nt, err := s.create(old.Tenant, old.Role)
	if err != nil {
		return api.NewToken{}, err
	}
	_, err = s.revoke(id)
	return nt, err
}

// save writes records to the store's file: a temporary file, fsynced,
// renamed over the old one, and the directory fsynced, so that a crash
// leaves the old file or the new one. With mu held.
func (s *tokenStore) save(records []tokenRecord) error {
	b, err := json.MarshalIndent(tokenFile{Version: 1, Tokens: records}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tokens-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
	if err = errors.Join(err, tmp.Sync(), tmp.Close()); err == nil {
		err = os.Rename(tmp.Name(), s.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("grid: save the token store: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("grid: no randomness for a token: %v", err))
	}
	return hex.EncodeToString(b)
}

package grid

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/wasmgrid/wasmgrid/api"
)

// moduleBlob names a module by its hash and the file that holds it: modules
// travel through admission and to the agents by reference, never as bytes
// in the coordinator's memory.
type moduleBlob struct {
	Name string // the spec's name for it
	Hash string // sha256, hex
	Path string // the file in the coordinator's module directory
	Size int64
}

// copyBufferSize is the buffer a module passes through on its way to disk:
// what one upload costs in memory, whatever the module's size.
const copyBufferSize = 64 << 10

var copyBuffers = sync.Pool{New: func() any { return new([copyBufferSize]byte) }}

// errModuleTooLarge is a module longer than its reader's limit.
var errModuleTooLarge = errors.New("module too large")

// writeModuleFrom streams a module from r into dir under its sha256,
// hashing it as it is written: a temporary file, fsynced and renamed, so
// that a reader never sees half a module, and memory is one buffer
// whatever the module's size. More than limit bytes is errModuleTooLarge,
// and nothing is stored.
func writeModuleFrom(dir string, r io.Reader, limit int64) (hash string, size int64, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", 0, err
	}
	tmp, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return "", 0, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	buf := copyBuffers.Get().(*[copyBufferSize]byte)
	defer copyBuffers.Put(buf)
	size, err = io.CopyBuffer(io.MultiWriter(tmp, h), io.LimitReader(r, limit+1), buf[:])
	if err != nil {
		return "", 0, err
	}
	if size > limit {
		return "", 0, errModuleTooLarge
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return "", 0, err
	}
	hash = hex.EncodeToString(h.Sum(nil))
	path := filepath.Join(dir, hash+".wasm")
	if _, serr := os.Stat(path); serr == nil {
		os.Remove(tmp.Name()) // the same bytes are there already
		return hash, size, nil
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", 0, err
	}
	// The rename is durable once the directory is: an acknowledged module
	// survives a crash of the machine.
	if err := syncDir(dir); err != nil {
		return "", 0, err
	}
	return hash, size, nil
}

// syncDir fsyncs a directory: the names in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// writeModule stores module b in dir under its hash, once, copied from
// the file that holds it (a hard link where the file system allows).
func writeModule(dir string, b moduleBlob) (string, error) {
	path := filepath.Join(dir, b.Hash+".wasm")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if filepath.Clean(b.Path) == path {
		return "", fmt.Errorf("store module %s: %s is gone", b.Name, path)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.Link(b.Path, path); err == nil || os.IsExist(err) {
		return path, nil
	}
	f, err := os.Open(b.Path)
	if err != nil {
		return "", fmt.Errorf("store module %s: %w", b.Name, err)
	}
	defer f.Close()
	hash, _, err := writeModuleFrom(dir, f, b.Size)
	if err == nil && hash != b.Hash {
		err = fmt.Errorf("its file %s has sha256 %s, not %s", b.Path, hash, b.Hash)
	}
	if err != nil {
		return "", fmt.Errorf("store module %s: %w", b.Name, err)
	}
	return path, nil
}

// maxModuleFetch bounds a module an agent fetches from the coordinator,
// whose limits.module_size is the real bound.
const maxModuleFetch = 4 << 30

// hashFile is the sha256 of a file, read through one buffer.
func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	buf := copyBuffers.Get().(*[copyBufferSize]byte)
	defer copyBuffers.Put(buf)
	if _, err := io.CopyBuffer(h, f, buf[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// storeBytes writes a module given as bytes (the embedded grid's Submit)
// to dir, and names it.
func storeBytes(dir, name string, b []byte) (moduleBlob, error) {
	sum := sha256.Sum256(b)
	hash := hex.EncodeToString(sum[:])
	path := filepath.Join(dir, hash+".wasm")
	if fi, err := os.Stat(path); err == nil && fi.Size() == int64(len(b)) {
		return moduleBlob{Name: name, Hash: hash, Path: path, Size: fi.Size()}, nil
	}
	hash, size, err := writeModuleFrom(dir, bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return moduleBlob{}, fmt.Errorf("store module %s: %w", name, err)
	}
	return moduleBlob{Name: name, Hash: hash, Path: filepath.Join(dir, hash+".wasm"), Size: size}, nil
}

// moduleStore is the coordinator's module directory and who owns what in
// it: each tenant's modules and bytes, bounded by the limits. Owners and
// sizes are replicated state: they change only when a server applies a
// module command of the log (applyModule), and are part of its snapshots.
// Reservations and pins are this server's: uploads and admissions in
// progress here.
type moduleStore struct {
	dir string
	lim LimitsConfig

	mu     sync.Mutex                 // protects the maps below
	owners map[string]map[string]bool // hash -> tenants
	sizes  map[string]int64           // hash -> bytes
	usage  map[string]*moduleUsage    // tenant -> its share
	pins   map[string]int             // hash -> submissions being admitted with it
	// orphans are modules nobody owns whose file may still be here: it
	// goes when no running job uses it and nothing pins it.
	orphans map[string]bool
}

// moduleUsage is a tenant's share of the module directory.
type moduleUsage struct {
	count    int
	bytes    int64
	reserved int64 // bytes of uploads in progress
}

// removeTemporaries deletes what writes interrupted by a crash left in
// dir: files named prefix*, never renamed into place.
func removeTemporaries(dir string, prefixes ...string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		for _, p := range prefixes {
			if strings.HasPrefix(e.Name(), p) && e.Type().IsRegular() {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
}

// newModuleStore is the store of the module directory dir, whose
// interrupted uploads it deletes.
func newModuleStore(dir string, lim LimitsConfig) *moduleStore {
	removeTemporaries(dir, ".upload-", ".tmp-")
	return &moduleStore{dir: dir, lim: lim, owners: map[string]map[string]bool{}, sizes: map[string]int64{}, usage: map[string]*moduleUsage{}, pins: map[string]int{}, orphans: map[string]bool{}}
}

// pin keeps hash's file while a submission that uses it is admitted;
// unpin lets it go.
func (s *moduleStore) pin(hash string) (unpin func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pins[hash]++
	return sync.OnceFunc(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.pins[hash]--; s.pins[hash] <= 0 {
			delete(s.pins, hash)
		}
	})
}

func (s *moduleStore) pinned(hash string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pins[hash] > 0
}

// quotaError is an upload past a tenant's module limits.
type quotaError struct{ msg string }

func (e *quotaError) Error() string { return e.msg }

// reserve sets aside room for an upload of tenant of declared bytes (-1:
// unknown) and says how many bytes it may send; release gives back the
// room it does not end up using.
func (s *moduleStore) reserve(tenant string, declared int64) (limit int64, release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.tenant(tenant)
	if u.count >= s.lim.ModulesPerTenant {
		return 0, nil, &quotaError{fmt.Sprintf("tenant %s holds %d modules, its limit (limits.modules_per_tenant): delete some (DELETE /v1/modules/HASH)", tenant, u.count)}
	}
	left := int64(s.lim.ModuleBytesPerTenant) - u.bytes - u.reserved
	limit = min(int64(s.lim.ModuleSize), left)
	if declared > int64(s.lim.ModuleSize) {
		return 0, nil, &quotaError{fmt.Sprintf("the module is %d bytes; limits.module_size is %s", declared, s.lim.ModuleSize)}
	}
	if declared > left || limit <= 0 {
		return 0, nil, &quotaError{fmt.Sprintf("tenant %s has %d bytes of modules left of limits.module_bytes_per_tenant (%s), uploads in progress included: delete some (DELETE /v1/modules/HASH)", tenant, max(left, 0), s.lim.ModuleBytesPerTenant)}
	}
	if declared >= 0 {
		limit = declared
	}
	u.reserved += limit
	return limit, sync.OnceFunc(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.tenant(tenant).reserved -= limit
	}), nil
}

func (s *moduleStore) tenant(t string) *moduleUsage {
	u := s.usage[t]
	if u == nil {
		u = &moduleUsage{}
		s.usage[t] = u
	}
	return u
}

// own records that tenant owns the module hash of size bytes; owning it
// again is free. Only a committed module command calls it.
func (s *moduleStore) own(tenant, hash string, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.orphans, hash)
	if s.owners[hash] == nil {
		s.owners[hash] = map[string]bool{}
	}
	if s.owners[hash][tenant] {
		return
	}
	s.owners[hash][tenant] = true
	s.sizes[hash] = size
	u := s.tenant(tenant)
	u.count++
	u.bytes += size
}

// owned reports whether p may use the module hash: a tenant its own
// modules, the admin any module the log names.
func (s *moduleStore) owned(p principal, hash string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.owners[hash]) > 0 && (p.admin || s.owners[hash][p.tenant])
}

// owns reports whether tenant owns hash.
func (s *moduleStore) owns(tenant, hash string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owners[hash][tenant]
}

// named reports whether the replicated state names hash: some tenant owns
// it, so every server should hold its file.
func (s *moduleStore) named(hash string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.owners[hash]) > 0
}

// disown drops tenant's ownership of hash, and reports whether nobody
// owns it any more. Only a committed module command calls it.
func (s *moduleStore) disown(tenant, hash string) (found, orphan bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.owners[hash][tenant] {
		return false, false
	}
	delete(s.owners[hash], tenant)
	u := s.tenant(tenant)
	u.count--
	u.bytes -= s.sizes[hash]
	if len(s.owners[hash]) == 0 {
		delete(s.owners, hash)
		delete(s.sizes, hash)
		s.orphans[hash] = true
		return true, true
	}
	return true, false
}

// sweep deletes the files of orphan modules that inUse does not name and
// nothing pins here. Every server sweeps when it applies a deletion or a
// job's end, so each deletes its file once no job uses it.
func (s *moduleStore) sweep(inUse map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for hash := range s.orphans {
		if inUse[hash] || s.pins[hash] > 0 {
			continue
		}
		delete(s.orphans, hash)
		if err := os.Remove(filepath.Join(s.dir, hash+".wasm")); err != nil && !os.IsNotExist(err) {
			s.orphans[hash] = true // tried again at the next sweep
		}
	}
}

// records is the replicated part of the store, by hash, for a snapshot.
func (s *moduleStore) records() []moduleRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []moduleRecord{}
	for _, hash := range slices.Sorted(maps.Keys(s.owners)) {
		out = append(out, moduleRecord{Hash: hash, Size: s.sizes[hash], Owners: slices.Sorted(maps.Keys(s.owners[hash]))})
	}
	return out
}

// restore replaces the replicated part of the store with a snapshot's;
// reservations and pins stay. Modules the snapshot no longer names are
// orphans, swept like the others.
func (s *moduleStore) restore(recs []moduleRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for hash := range s.owners {
		s.orphans[hash] = true
	}
	s.owners, s.sizes = map[string]map[string]bool{}, map[string]int64{}
	for t, u := range s.usage {
		u.count, u.bytes = 0, 0
		if u.reserved == 0 {
			delete(s.usage, t)
		}
	}
	for _, r := range recs {
		delete(s.orphans, r.Hash)
		s.owners[r.Hash] = map[string]bool{}
		s.sizes[r.Hash] = r.Size
		for _, t := range r.Owners {
			s.owners[r.Hash][t] = true
			u := s.tenant(t)
			u.count++
			u.bytes += r.Size
		}
	}
}

// hashes is every module the replicated state names.
func (s *moduleStore) hashes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.owners))
}

// has reports whether this server holds the file of hash.
func (s *moduleStore) has(hash string) bool {
	_, err := os.Stat(filepath.Join(s.dir, hash+".wasm"))
	return err == nil
}

// list is the modules p may use, by hash.
func (s *moduleStore) list(p principal) []api.ModuleInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []api.ModuleInfo{}
	for hash, owners := range s.owners {
		if p.admin || owners[p.tenant] {
			out = append(out, api.ModuleInfo{Hash: hash, Size: s.sizes[hash]})
		}
	}
	slices.SortFunc(out, func(a, b api.ModuleInfo) int { return strings.Compare(a.Hash, b.Hash) })
	return out
}

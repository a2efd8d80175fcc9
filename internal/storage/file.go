package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
)

// fileStore is a file volume: every access goes through an os.Root opened
// at the volume's directory, so that neither ".." nor a symbolic link
// (planted by a tenant, or swapped in between a check and a use) reaches
// outside it.
type fileStore struct {
	name string
	root *os.Root
}

// OpenFile opens a file volume's store.
func OpenFile(v Volume) (Store, error) {
	root, err := os.OpenRoot(v.Root())
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", v.Name, err)
	}
	return &fileStore{name: v.Name, root: root}, nil
}

func (s *fileStore) Close() error { return s.root.Close() }

// rootName is name as os.Root takes it: "." for the root.
func rootName(name string) string {
	if name == "" {
		return "."
	}
	return name
}

// escapes reports whether err is os.Root's refusal of a path that leads
// out of the root. Root does not export the error; its text is stable,
// and TestFileStoreRefusesEscapes fails if it ever changes.
func escapes(err error) bool {
	return err != nil && strings.Contains(err.Error(), "path escapes from parent")
}

// wrap turns os.Root's errors into ones that name the volume and the rule.
func (s *fileStore) wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if escapes(err) {
		return refused("%s:%s leads out of volume %s (a symbolic link that points outside it, or an absolute one): it is refused", s.name, name, s.name)
	}
	return fmt.Errorf("%s %s:%s: %w", op, s.name, name, err)
}

func (s *fileStore) Glob(ctx context.Context, pattern string) ([]Object, error) {
	if err := checkPattern(pattern); err != nil {
		return nil, err
	}
	var out []Object
	var walk func(dir string, elems []string) error
	walk = func(dir string, elems []string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(elems) == 0 {
			fi, err := s.root.Stat(rootName(dir))
			switch {
			case err == nil:
				if fi.Mode().IsRegular() {
					out = append(out, Object{Path: dir, Size: fi.Size()})
				}
				return nil
			case errors.Is(err, fs.ErrNotExist):
				return nil // a dangling link, or a literal name that is not there
			}
			return s.wrap("stat", dir, err)
		}
		e := elems[0]
		if !hasMeta(e) {
			return walk(path.Join(dir, e), elems[1:])
		}
		ents, err := s.readDir(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
			return nil
		case err != nil:
			return err
		}
		for _, ent := range ents {
			if hidden(ent.Name()) && !hidden(e) {
				continue
			}
			if ok, _ := path.Match(e, ent.Name()); ok {
				if err := walk(path.Join(dir, ent.Name()), elems[1:]); err != nil {
					return err
				}
			}
		}
		return nil
	}
	var elems []string
	if pattern != "" && pattern != "." {
		elems = strings.Split(pattern, "/")
	}
	if err := walk("", elems); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// hidden reports whether a wildcard skips a name: names that start with
// '.' or '_' (a _SUCCESS marker, a job's staging area) are matched only by
// a pattern that starts the same way, as Hadoop's and Spark's file inputs
// skip them.
func hidden(name string) bool { return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") }

// readDir lists a directory's entries, sorted by name.
func (s *fileStore) readDir(dir string) ([]fs.DirEntry, error) {
	f, err := s.root.Open(rootName(dir))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, s.wrap("open", dir, err)
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return nil, err
		}
		return nil, s.wrap("read directory", dir, err)
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, nil
}

func (s *fileStore) Stat(ctx context.Context, name string) (Object, error) {
	if err := checkName(name); err != nil {
		return Object{}, err
	}
	fi, err := s.root.Stat(rootName(name))
	if err != nil {
		return Object{}, s.wrap("stat", name, err)
	}
	if !fi.Mode().IsRegular() {
		return Object{}, fmt.Errorf("%s:%s is not a regular file", s.name, name)
	}
	return Object{Path: name, Size: fi.Size()}, nil
}

func (s *fileStore) List(ctx context.Context, dir string) ([]Object, error) {
	if err := checkName(dir); err != nil {
		return nil, err
	}
	var out []Object
	var walk func(dir string) error
	walk = func(dir string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		ents, err := s.readDir(dir)
		if err != nil {
			return err
		}
		for _, ent := range ents {
			p := path.Join(dir, ent.Name())
			if ent.IsDir() {
				if err := walk(p); err != nil {
					return err
				}
				continue
			}
			var size int64
			if fi, err := ent.Info(); err == nil {
				size = fi.Size()
			}
			out = append(out, Object{Path: p, Size: size})
		}
		return nil
	}
	err := walk(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if errors.Is(err, syscall.ENOTDIR) {
		return nil, fmt.Errorf("%s:%s is a file, not a directory", s.name, dir)
	}
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

func (s *fileStore) Open(ctx context.Context, name string, offset int64) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	// O_NONBLOCK: a FIFO swapped in for a file must not block the open;
	// the check below refuses it (on a regular file the flag does nothing).
	f, err := s.root.OpenFile(rootName(name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, s.wrap("open", name, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s:%s is not a regular file", s.name, name)
	}
	if err == nil && offset > 0 {
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// fileWriter writes a temporary file beside its name and renames it into
// place on Commit.
type fileWriter struct {
	s         *fileStore
	f         *os.File
	tmp, name string
	done      bool
}

func (s *fileStore) Create(ctx context.Context, name string) (Writer, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, refused("cannot write the root of volume %s as a file", s.name)
	}
	if err := s.mkdirAll(path.Dir(name)); err != nil {
		return nil, err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := path.Join(path.Dir(name), "."+path.Base(name)+".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, s.wrap("create", name, err)
	}
	return &fileWriter{s: s, f: f, tmp: tmp, name: name}, nil
}

func (w *fileWriter) Write(b []byte) (int, error) { return w.f.Write(b) }

func (w *fileWriter) Commit() error {
	if w.done {
		return errors.New("storage: writer already committed or aborted")
	}
	w.done = true
	err := errors.Join(w.f.Sync(), w.f.Close())
	if err == nil {
		err = w.s.root.Rename(w.tmp, w.name)
	}
	if err == nil {
		err = w.s.syncDir(path.Dir(w.name))
	}
	if err != nil {
		w.s.root.Remove(w.tmp)
		return w.s.wrap("commit", w.name, err)
	}
	return nil
}

func (w *fileWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	w.s.root.Remove(w.tmp)
}

func (s *fileStore) mkdirAll(dir string) error {
	if dir == "." || dir == "" {
		return nil
	}
	return s.wrap("mkdir", dir, s.root.MkdirAll(dir, 0o755))
}

// syncDir makes a directory's entries durable.
func (s *fileStore) syncDir(dir string) error {
	d, err := s.root.Open(rootName(dir))
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

func (s *fileStore) Rename(ctx context.Context, from, to string) error {
	for _, n := range []string{from, to} {
		if err := checkName(n); err != nil {
			return err
		}
		if n == "" {
			return refused("cannot move the root of volume %s", s.name)
		}
	}
	if err := s.mkdirAll(path.Dir(to)); err != nil {
		return err
	}
	if err := s.root.Rename(from, to); err != nil {
		return s.wrap("rename", from, err)
	}
	err := s.syncDir(path.Dir(to))
	if path.Dir(from) != path.Dir(to) {
		err = errors.Join(err, s.syncDir(path.Dir(from)))
	}
	return s.wrap("sync", to, err)
}

// RenameDir moves a directory in one step: a commit that nobody sees half
// done.
func (s *fileStore) RenameDir(ctx context.Context, from, to string) error {
	return s.Rename(ctx, from, to)
}

func (s *fileStore) Truncate(ctx context.Context, name string, size int64) error {
	if err := checkName(name); err != nil {
		return err
	}
	f, err := s.root.OpenFile(rootName(name), os.O_WRONLY, 0)
	if err != nil {
		return s.wrap("truncate", name, err)
	}
	return s.wrap("truncate", name, errors.Join(f.Truncate(size), f.Sync(), f.Close()))
}

func (s *fileStore) Remove(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := s.root.Remove(rootName(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s.wrap("remove", name, err)
	}
	return nil
}

func (s *fileStore) RemoveAll(ctx context.Context, dir string) error {
	if err := checkName(dir); err != nil {
		return err
	}
	if dir == "" || dir == "." {
		return refused("cannot remove the root of volume %s", s.name)
	}
	return s.wrap("remove", dir, s.root.RemoveAll(dir))
}

package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// Object is a file of a volume: its path relative to the volume's root and
// its size.
type Object struct {
	Path string
	Size int64
}

// Store reads and writes one volume. Names are slash-separated paths
// relative to the volume's root, as Ref.Path; no method ever reaches
// outside the volume, whatever the names or the links inside it say. A
// missing file is an error that matches fs.ErrNotExist. Stores are safe
// for concurrent use.
type Store interface {
	// Glob lists the regular files that match pattern (path.Match syntax
	// in every element), sorted by path. A match that would lead out of the
	// volume (a symbolic link) is an error that names it.
	Glob(ctx context.Context, pattern string) ([]Object, error)
	// Stat describes one file.
	Stat(ctx context.Context, name string) (Object, error)
	// List lists every file under dir, at any depth, sorted; nothing
	// (and no error) if dir does not exist.
	List(ctx context.Context, dir string) ([]Object, error)
	// Open reads name from offset to its end. The reader may be closed
	// before its end.
	Open(ctx context.Context, name string, offset int64) (io.ReadCloser, error)
	// Create writes name, making the directories it needs. Nothing is
	// visible under name until Commit returns, durably; Abort discards
	// what was written.
	Create(ctx context.Context, name string) (Writer, error)
	// Rename moves the file from to to, replacing to.
	Rename(ctx context.Context, from, to string) error
	// Truncate cuts name to its first size bytes.
	Truncate(ctx context.Context, name string, size int64) error
	// Remove deletes a file; a missing one is not an error.
	Remove(ctx context.Context, name string) error
	// RemoveAll deletes dir and everything under it; a missing one is not
	// an error.
	RemoveAll(ctx context.Context, dir string) error
	// Close releases the store.
	Close() error
}

// Writer is a file being written by Store.Create.
type Writer interface {
	io.Writer
	// Commit makes what was written durable and visible under the
	// writer's name, replacing what was there.
	Commit() error
	// Abort discards what was written; after Commit it does nothing.
	Abort()
}

// dirRenamer is a store that moves a directory in one step (rename(2)),
// which makes a commit atomic.
type dirRenamer interface {
	RenameDir(ctx context.Context, from, to string) error
}

// Open opens the store of a volume.
func Open(v Volume) (Store, error) {
	if err := v.Validate(); err != nil {
		return nil, err
	}
	switch v.Scheme() {
	case "file":
		return OpenFile(v)
	case "s3":
		return OpenS3(v)
	}
	return nil, fmt.Errorf("volume %s: no store for %s", v.Name, v.URL)
}

// hasMeta reports whether a path element is a pattern.
func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// checkName refuses a name that is not a clean relative path.
func checkName(name string) error {
	if name == "" || name == "." {
		return nil
	}
	if !ValidPath(name) {
		return refused("%q is not a clean path inside a volume (no leading '/', no empty, '.' or '..' elements)", name)
	}
	return nil
}

// ValidPath reports whether name is a clean relative path: elements
// separated by single slashes, none of them empty, "." or "..", and no NUL
// byte. Unlike fs.ValidPath it admits names that are not UTF-8, which a
// file system may hold.
func ValidPath(name string) bool {
	if name == "." {
		return true
	}
	if strings.IndexByte(name, 0) >= 0 {
		return false
	}
	for _, e := range strings.Split(name, "/") {
		if e == "" || e == "." || e == ".." {
			return false
		}
	}
	return true
}

// checkPattern refuses a pattern that is malformed or not a clean
// relative path.
func checkPattern(pattern string) error {
	if err := checkName(pattern); err != nil {
		return err
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("bad pattern %q: %w", pattern, err)
	}
	return nil
}

// IsNotExist reports whether err says a file does not exist.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

package storage_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/internal/storage/storagetest"
)

func openFileStore(t *testing.T, dir string) storage.Store {
	t.Helper()
	s, err := storage.Open(storage.Volume{Name: "vol", URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFileStore(t *testing.T) {
	storagetest.TestStore(t, func(t *testing.T) storage.Store { return openFileStore(t, t.TempDir()) })
}

// TestFileStoreRefusesEscapes plants symbolic links that lead out of a
// volume, and checks that every way of using them is refused by name while
// the files they point at are never read or written.
func TestFileStoreRefusesEscapes(t *testing.T) {
	top := t.TempDir()
	vol := filepath.Join(top, "vol")
	secret := filepath.Join(top, "secret")
	for _, d := range []string{vol, secret, filepath.Join(vol, "in")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(secret, "key"), []byte("SECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vol, "in", "ok.txt"), []byte("fine"), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"in/rel.txt":    "../../secret/key",
		"in/abs.txt":    filepath.Join(secret, "key"),
		"dirlink":       "../secret",
		"in/inside.txt": "ok.txt", // inside the volume: allowed
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(vol, name)); err != nil {
			t.Fatal(err)
		}
	}
	s := openFileStore(t, vol)
	defer s.Close()
	ctx := context.Background()
	refusals := []struct {
		what string
		err  error
	}{}
	try := func(what string, err error) {
		refusals = append(refusals, struct {
			what string
			err  error
		}{what, err})
	}
	_, err := s.Glob(ctx, "in/*.txt")
	try("Glob in/*.txt", err)
	_, err = s.Glob(ctx, "dirlink/*")
	try("Glob dirlink/*", err)
	_, err = s.Open(ctx, "in/rel.txt", 0)
	try("Open in/rel.txt", err)
	_, err = s.Open(ctx, "in/abs.txt", 0)
	try("Open in/abs.txt", err)
	_, err = s.Open(ctx, "dirlink/key", 0)
	try("Open dirlink/key", err)
	_, err = s.Stat(ctx, "dirlink/key")
	try("Stat dirlink/key", err)
	_, err = s.Create(ctx, "dirlink/planted")
	try("Create dirlink/planted", err)
	err = s.Rename(ctx, "in/ok.txt", "dirlink/stolen")
	try("Rename into dirlink", err)
	err = s.Truncate(ctx, "in/rel.txt", 0)
	try("Truncate in/rel.txt", err)
	_, err = s.List(ctx, "dirlink")
	try("List dirlink", err)
	for _, r := range refusals {
		if !errors.Is(r.err, storage.ErrRefused) || !strings.Contains(r.err.Error(), "leads out of volume vol") {
			t.Errorf("%s: %v; want a refusal that says it leads out of volume vol", r.what, r.err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(secret, "key")); string(b) != "SECRET" {
		t.Errorf("the secret changed: %q", b)
	}
	if ents, _ := os.ReadDir(secret); len(ents) != 1 {
		t.Errorf("files were written outside the volume: %v", ents)
	}
	// A link that stays inside is followed.
	objs, err := s.Glob(ctx, "in/ins*.txt")
	if err != nil || len(objs) != 1 || objs[0].Size != 4 {
		t.Errorf("Glob of a link inside the volume = %v, %v; want in/inside.txt of 4 bytes", objs, err)
	}
	// Removing a link removes the link, not what it points at.
	if err := s.RemoveAll(ctx, "dirlink"); err != nil {
		t.Errorf("RemoveAll(dirlink): %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(secret, "key")); string(b) != "SECRET" {
		t.Errorf("RemoveAll of a link removed its target: %q", b)
	}
}

func TestFileStoreRefusesFIFO(t *testing.T) {
	vol := t.TempDir()
	if err := mkfifo(filepath.Join(vol, "pipe")); err != nil {
		t.Skip("no mkfifo:", err)
	}
	s := openFileStore(t, vol)
	defer s.Close()
	// A FIFO is not a regular file: not matched, and not opened (an open
	// that blocked would hang this test).
	objs, err := s.Glob(context.Background(), "*")
	if err != nil || len(objs) != 0 {
		t.Errorf("Glob(*) = %v, %v; want nothing", objs, err)
	}
	if _, err := s.Open(context.Background(), "pipe", 0); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Open(pipe) = %v; want not a regular file", err)
	}
}

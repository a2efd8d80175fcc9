// Package storagetest is the conformance suite of storage.Store: every
// store (a file volume, an S3 bucket) must pass TestStore, and with it the
// output commit protocol that runs on top of it.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/storage"
)

// TestStore runs the conformance suite. open returns an empty store for a
// subtest (a new directory, a new prefix), which the suite closes.
func TestStore(t *testing.T, open func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"CreateCommitOpen", testCreateCommitOpen},
		{"AbortLeavesNothing", testAbort},
		{"Glob", testGlob},
		{"List", testList},
		{"RenameTruncateRemove", testRenameTruncateRemove},
		{"BadNames", testBadNames},
		{"OutputCommit", testOutputCommit},
		{"OutputRules", testOutputRules},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

// Put writes a file and commits it.
func Put(t testing.TB, s storage.Store, name, content string) {
	t.Helper()
	w, err := s.Create(context.Background(), name)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if _, err := io.WriteString(w, content); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("commit %s: %v", name, err)
	}
}

// Get reads a whole file.
func Get(t testing.TB, s storage.Store, name string) string {
	t.Helper()
	r, err := s.Open(context.Background(), name, 0)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

func paths(objs []storage.Object) []string {
	out := []string{}
	for _, o := range objs {
		out = append(out, o.Path)
	}
	return out
}

func testCreateCommitOpen(t *testing.T, s storage.Store) {
	ctx := context.Background()
	w, err := s.Create(ctx, "a/b/c.txt")
	if err != nil {
		t.Fatal(err)
	}
	content := strings.Repeat("0123456789", 100_000) // a megabyte: more than one write
	if _, err := io.WriteString(w, content); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "a/b/c.txt"); !storage.IsNotExist(err) {
		t.Errorf("before Commit, Stat = %v; want a not-exist error (nothing visible yet)", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	o, err := s.Stat(ctx, "a/b/c.txt")
	if err != nil || o.Size != int64(len(content)) || o.Path != "a/b/c.txt" {
		t.Fatalf("Stat = %+v, %v; want a/b/c.txt of %d bytes", o, err, len(content))
	}
	if got := Get(t, s, "a/b/c.txt"); got != content {
		t.Fatalf("read back %d bytes, want %d", len(got), len(content))
	}
	r, err := s.Open(ctx, "a/b/c.txt", 999_995)
	if err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(r)
	r.Close()
	if err != nil || string(tail) != "56789" {
		t.Errorf("Open at 999995 read %q, %v; want \"56789\"", tail, err)
	}
	// Closing a reader early is allowed.
	r, err = s.Open(ctx, "a/b/c.txt", 10)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "01234" {
		t.Errorf("Open at 10 read %q, %v", buf, err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("early close: %v", err)
	}
	// Create replaces.
	Put(t, s, "a/b/c.txt", "new")
	if got := Get(t, s, "a/b/c.txt"); got != "new" {
		t.Errorf("after a second Create, read %q; want \"new\"", got)
	}
	if _, err := s.Open(ctx, "a/b/missing", 0); !storage.IsNotExist(err) {
		t.Errorf("Open of a missing file: %v; want a not-exist error", err)
	}
	if _, err := s.Stat(ctx, "missing"); !storage.IsNotExist(err) {
		t.Errorf("Stat of a missing file: %v; want a not-exist error", err)
	}
}

func testAbort(t *testing.T, s storage.Store) {
	ctx := context.Background()
	w, err := s.Create(ctx, "x/aborted")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "never seen")
	w.Abort()
	w.Abort() // twice is fine
	objs, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if strings.Contains(o.Path, "aborted") {
			t.Errorf("after Abort the store holds %s", o.Path)
		}
	}
}

func testGlob(t *testing.T, s storage.Store) {
	ctx := context.Background()
	for _, n := range []string{"in/a.txt", "in/b.txt", "in/c.csv", "in/sub/d.txt", "in/_SUCCESS", "in/.hidden.txt", "in2/e.txt", "other/f.txt"} {
		Put(t, s, n, n)
	}
	cases := []struct {
		pattern string
		want    []string
	}{
		{"in/*.txt", []string{"in/a.txt", "in/b.txt"}},
		{"in/*", []string{"in/a.txt", "in/b.txt", "in/c.csv"}}, // no directories, no hidden files
		{"in/_*", []string{"in/_SUCCESS"}},
		{"in/.h*", []string{"in/.hidden.txt"}},
		{"in*/*.txt", []string{"in/a.txt", "in/b.txt", "in2/e.txt"}},
		{"*/sub/*.txt", []string{"in/sub/d.txt"}},
		{"in/a.txt", []string{"in/a.txt"}},
		{"in/[ab].txt", []string{"in/a.txt", "in/b.txt"}},
		{"in/?.csv", []string{"in/c.csv"}},
		{"nothing/*", []string{}},
		{"in/missing.txt", []string{}},
	}
	for _, c := range cases {
		objs, err := s.Glob(ctx, c.pattern)
		if err != nil {
			t.Errorf("Glob(%q): %v", c.pattern, err)
			continue
		}
		if got := paths(objs); !slices.Equal(got, c.want) {
			t.Errorf("Glob(%q) = %q; want %q", c.pattern, got, c.want)
		}
		for _, o := range objs {
			if o.Size != int64(len(o.Path)) {
				t.Errorf("Glob(%q): %s has size %d; want %d", c.pattern, o.Path, o.Size, len(o.Path))
			}
		}
	}
	for _, bad := range []string{"../*", "/in/*", "in/../../*", "in/[", "in/./a.txt"} {
		if _, err := s.Glob(ctx, bad); err == nil {
			t.Errorf("Glob(%q) succeeded; want it refused", bad)
		}
	}
}

func testList(t *testing.T, s storage.Store) {
	ctx := context.Background()
	for _, n := range []string{"d/1", "d/2/3", "d/2/4", "dd/5", "e"} {
		Put(t, s, n, "x")
	}
	objs, err := s.List(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := paths(objs), []string{"d/1", "d/2/3", "d/2/4"}; !slices.Equal(got, want) {
		t.Errorf("List(d) = %q; want %q (not dd/5: a directory is a path element)", got, want)
	}
	objs, err = s.List(ctx, "nothing")
	if err != nil || len(objs) != 0 {
		t.Errorf("List of a missing directory = %v, %v; want nothing and no error", objs, err)
	}
}

func testRenameTruncateRemove(t *testing.T, s storage.Store) {
	ctx := context.Background()
	Put(t, s, "r/a", "alpha")
	Put(t, s, "r/b", "beta")
	if err := s.Rename(ctx, "r/a", "r/b"); err != nil {
		t.Fatal(err)
	}
	if got := Get(t, s, "r/b"); got != "alpha" {
		t.Errorf("after Rename(a, b), b = %q; want alpha", got)
	}
	if _, err := s.Stat(ctx, "r/a"); !storage.IsNotExist(err) {
		t.Errorf("after Rename, a: %v; want gone", err)
	}
	if err := s.Rename(ctx, "r/b", "elsewhere/deep/c"); err != nil {
		t.Fatal(err)
	}
	if err := s.Truncate(ctx, "elsewhere/deep/c", 3); err != nil {
		t.Fatal(err)
	}
	if got := Get(t, s, "elsewhere/deep/c"); got != "alp" {
		t.Errorf("after Truncate(3) = %q; want alp", got)
	}
	if err := s.Remove(ctx, "elsewhere/deep/c"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "elsewhere/deep/c"); err != nil {
		t.Errorf("Remove of a missing file: %v; want no error", err)
	}
	Put(t, s, "tree/1", "1")
	Put(t, s, "tree/x/2", "2")
	Put(t, s, "treetop", "kept")
	if err := s.RemoveAll(ctx, "tree"); err != nil {
		t.Fatal(err)
	}
	objs, _ := s.List(ctx, "")
	if got := paths(objs); !slices.Equal(got, []string{"treetop"}) {
		t.Errorf("after RemoveAll(tree) the store holds %q; want only treetop", got)
	}
	if err := s.RemoveAll(ctx, "tree"); err != nil {
		t.Errorf("RemoveAll of a missing directory: %v", err)
	}
	if err := s.RemoveAll(ctx, ""); err == nil {
		t.Error("RemoveAll of the root succeeded; want it refused")
	}
}

func testBadNames(t *testing.T, s storage.Store) {
	ctx := context.Background()
	for _, bad := range []string{"../x", "/etc/passwd", "a/../../x", "a//b", "./a"} {
		if _, err := s.Create(ctx, bad); err == nil {
			t.Errorf("Create(%q) succeeded; want it refused", bad)
		}
		if _, err := s.Open(ctx, bad, 0); err == nil {
			t.Errorf("Open(%q) succeeded; want it refused", bad)
		}
		if err := s.Remove(ctx, bad); err == nil {
			t.Errorf("Remove(%q) succeeded; want it refused", bad)
		}
		if err := s.Rename(ctx, "x", bad); err == nil {
			t.Errorf("Rename(x, %q) succeeded; want it refused", bad)
		}
	}
}

// commit runs a job's output protocol: Prepare, attempts written, Commit.
func commit(s storage.Store, dir, job, tenant string, overwrite bool, parts ...string) error {
	ctx := context.Background()
	o := &storage.Output{Store: s, Volume: "v", Dir: dir, Job: job, Tenant: tenant}
	if err := o.Prepare(ctx, overwrite); err != nil {
		return err
	}
	var files []string
	for p, content := range parts {
		if content == "" {
			files = append(files, "")
			continue
		}
		// Two attempts; the second wins.
		for a := range 2 {
			w, err := s.Create(ctx, o.AttemptPath(p, a))
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s", content)
			if err := w.Commit(); err != nil {
				return err
			}
		}
		files = append(files, o.AttemptPath(p, 1))
	}
	return o.Commit(ctx, files, overwrite)
}

func testOutputCommit(t *testing.T, s storage.Store) {
	ctx := context.Background()
	if err := commit(s, "out/counts", "job-1", "alice", false, "a 1\n", "", "c 3\n"); err != nil {
		t.Fatal(err)
	}
	objs, err := s.List(ctx, "out")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"out/counts/_SUCCESS", "out/counts/part-00000", "out/counts/part-00001", "out/counts/part-00002"}
	if got := paths(objs); !slices.Equal(got, want) {
		t.Fatalf("after Commit, out holds %q; want %q (no staging area left)", got, want)
	}
	if got := Get(t, s, "out/counts/part-00002"); got != "c 3\n" {
		t.Errorf("part-00002 = %q", got)
	}
	if !strings.Contains(Get(t, s, "out/counts/_SUCCESS"), `"tenant": "alice"`) {
		t.Errorf("_SUCCESS does not name its tenant: %s", Get(t, s, "out/counts/_SUCCESS"))
	}
	// The same tenant replaces it with overwrite, with fewer parts.
	if err := commit(s, "out/counts", "job-2", "alice", true, "z 9\n"); err != nil {
		t.Fatal(err)
	}
	objs, _ = s.List(ctx, "out")
	if got, want := paths(objs), []string{"out/counts/_SUCCESS", "out/counts/part-00000"}; !slices.Equal(got, want) {
		t.Errorf("after the overwrite, out holds %q; want %q", got, want)
	}
	if got := Get(t, s, "out/counts/part-00000"); got != "z 9\n" {
		t.Errorf("after the overwrite, part-00000 = %q", got)
	}
	// Abort leaves nothing.
	o := &storage.Output{Store: s, Volume: "v", Dir: "out/failed", Job: "job-3", Tenant: "alice"}
	if err := o.Prepare(ctx, false); err != nil {
		t.Fatal(err)
	}
	Put(t, s, o.AttemptPath(0, 0), "partial")
	if err := o.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	objs, _ = s.List(ctx, "out")
	for _, ob := range objs {
		if !strings.HasPrefix(ob.Path, "out/counts/") {
			t.Errorf("after Abort the volume holds %s", ob.Path)
		}
	}
}

func testOutputRules(t *testing.T, s storage.Store) {
	ctx := context.Background()
	Put(t, s, "data/precious.txt", "not a job's output")
	if err := commit(s, "res", "job-1", "alice", false, "x\n"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		dir, tenant string
		overwrite   bool
		want        string // in the error
	}{
		{"data", "alice", false, "holds no output of a wasmgrid job"},
		{"data", "alice", true, "holds no output of a wasmgrid job"},
		{"res", "alice", false, "sink.overwrite"},
		{"res", "bob", true, "another tenant's output"},
		{"res", "bob", false, "another tenant's output"},
		{"", "alice", false, "not its root"},
	}
	for _, c := range cases {
		err := commit(s, c.dir, "job-9", c.tenant, c.overwrite, "evil\n")
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, storage.ErrRefused) {
			t.Errorf("%s writing %q (overwrite %v): %v; want a refusal saying %q", c.tenant, c.dir, c.overwrite, err, c.want)
		}
	}
	if got := Get(t, s, "data/precious.txt"); got != "not a job's output" {
		t.Errorf("data/precious.txt = %q after the refusals", got)
	}
	if got := Get(t, s, "res/part-00000"); got != "x\n" {
		t.Errorf("res/part-00000 = %q after the refusals", got)
	}
	// A crashed job's staging area never blocks a resubmission.
	o := &storage.Output{Store: s, Volume: "v", Dir: "again", Job: "job-5", Tenant: "alice"}
	Put(t, s, o.AttemptPath(0, 0), "left by a crash")
	if err := commit(s, "again", "job-6", "alice", false, "fresh\n"); err != nil {
		t.Fatalf("resubmission after a crash: %v", err)
	}
	objs, _ := s.List(ctx, "")
	for _, ob := range objs {
		if strings.Contains(ob.Path, "staging") {
			t.Errorf("a staging file is left: %s", ob.Path)
		}
	}
}

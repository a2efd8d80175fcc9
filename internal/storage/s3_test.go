package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/internal/storage/s3test"
	"github.com/wasmgrid/wasmgrid/internal/storage/storagetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { s3test.Main(m) }

// s3Volume is a volume on srv's bucket under prefix.
func s3Volume(srv s3test.Server, prefix string) storage.Volume {
	url := "s3://" + srv.Bucket
	if prefix != "" {
		url += "/" + prefix
	}
	return storage.Volume{Name: "lake", URL: url, Endpoint: srv.Endpoint, Region: srv.Region, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
}

func openS3(t testing.TB, v storage.Volume) storage.Store {
	t.Helper()
	s, err := storage.Open(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawClient talks to srv directly, around the store.
func rawClient(t testing.TB, srv s3test.Server) *minio.Client {
	t.Helper()
	c, err := minio.New(strings.TrimPrefix(srv.Endpoint, "http://"), &minio.Options{
		Creds:     credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""),
		Region:    srv.Region,
		Transport: &http.Transport{DisableKeepAlives: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestS3Store(t *testing.T) {
	srv := s3test.Start(t)
	n := 0
	storagetest.TestStore(t, func(t *testing.T) storage.Store {
		n++
		return openS3(t, s3Volume(srv, fmt.Sprintf("runs/%d", n)))
	})
}

// TestS3StoreWholeBucket runs the suite on volumes that are whole buckets.
func TestS3StoreWholeBucket(t *testing.T) {
	storagetest.TestStore(t, func(t *testing.T) storage.Store {
		return openS3(t, s3Volume(s3test.Start(t), ""))
	})
}

// pattern is n deterministic pseudo-random bytes.
func pattern(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

// TestS3MultipartUpload writes a file of three parts in odd-sized writes
// and reads it back, whole and from an offset inside the second part.
func TestS3MultipartUpload(t *testing.T) {
	srv := s3test.Start(t)
	s := openS3(t, s3Volume(srv, "mp"))
	defer s.Close()
	ctx := context.Background()
	data := pattern(1, 2*storage.S3PartSize+123_457)
	w, err := s.Create(ctx, "big/part-00000")
	if err != nil {
		t.Fatal(err)
	}
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1<<20+17)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if _, err := s.Stat(ctx, "big/part-00000"); !storage.IsNotExist(err) {
		t.Errorf("before Commit, Stat = %v; want not-exist", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	info, err := rawClient(t, srv).StatObject(ctx, srv.Bucket, "mp/big/part-00000", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) || !strings.HasSuffix(info.ETag, "-3") {
		t.Errorf("the object is %d bytes, ETag %s; want %d bytes from a multipart upload of 3 parts (ETag ending -3)", info.Size, info.ETag, len(data))
	}
	if got := storagetest.Get(t, s, "big/part-00000"); sha256.Sum256([]byte(got)) != sha256.Sum256(data) {
		t.Fatalf("read back %d bytes that differ from the %d written", len(got), len(data))
	}
	off := int64(storage.S3PartSize + 5)
	r, err := s.Open(ctx, "big/part-00000", off)
	if err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(tail, data[off:]) {
		t.Errorf("read from %d: %d bytes, %v; want the %d bytes written there", off, len(tail), err, len(data)-int(off))
	}
}

// incompleteUploads lists the multipart uploads under prefix that are
// neither completed nor aborted.
func incompleteUploads(t *testing.T, c *minio.Client, bucket, prefix string) []string {
	t.Helper()
	var out []string
	for u := range c.ListIncompleteUploads(context.Background(), bucket, prefix, true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		out = append(out, u.Key)
	}
	return out
}

// failFirstAbort is a transport that answers the first request to abort a
// multipart upload with an injected refusal, so that minio-go's own abort
// fails and the writer's sweep must do it.
type failFirstAbort struct {
	rt     http.RoundTripper
	mu     sync.Mutex
	aborts int // DELETE ?uploadId requests seen
}

func (f *failFirstAbort) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodDelete && req.URL.Query().Has("uploadId") {
		f.mu.Lock()
		f.aborts++
		first := f.aborts == 1
		f.mu.Unlock()
		if first {
			body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>injected by the test</Message></Error>`
			return &http.Response{
				StatusCode: http.StatusForbidden, Status: "403 Forbidden", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header:  http.Header{"Content-Type": {"application/xml"}},
				Body:    io.NopCloser(strings.NewReader(body)),
				Request: req, ContentLength: int64(len(body)),
			}, nil
		}
	}
	return f.rt.RoundTrip(req)
}

// TestS3AbortLeavesNoUpload aborts writers in the middle of their second
// part: no object, and no incomplete multipart upload is left, even when
// minio-go's own abort request fails.
func TestS3AbortLeavesNoUpload(t *testing.T) {
	srv := s3test.Start(t)
	raw := rawClient(t, srv)
	for _, inject := range []bool{false, true} {
		t.Run(fmt.Sprintf("abortFails=%v", inject), func(t *testing.T) {
			f := &failFirstAbort{}
			wrap := func(rt http.RoundTripper) http.RoundTripper {
				if !inject {
					return rt
				}
				f.rt = rt
				return f
			}
			prefix := fmt.Sprintf("abort-%v", inject)
			s, err := storage.OpenS3ForTest(s3Volume(srv, prefix), wrap)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			w, err := s.Create(context.Background(), "out/part-00000")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(pattern(2, storage.S3PartSize+1<<20)); err != nil {
				t.Fatal(err)
			}
			if got := incompleteUploads(t, raw, srv.Bucket, prefix+"/"); len(got) != 1 {
				t.Fatalf("while writing, the incomplete uploads are %q; want the writer's one (else this test tests nothing)", got)
			}
			w.Abort()
			if got := incompleteUploads(t, raw, srv.Bucket, prefix+"/"); len(got) != 0 {
				t.Errorf("after Abort, incomplete uploads are left: %q", got)
			}
			if _, err := s.Stat(context.Background(), "out/part-00000"); !storage.IsNotExist(err) {
				t.Errorf("after Abort, Stat = %v; want not-exist", err)
			}
			if inject && f.aborts < 2 {
				t.Errorf("%d abort requests; want the failed one and the sweep's", f.aborts)
			}
		})
	}
}

// cutter is a transport that breaks the GETs of one key in the middle of
// their bodies, as a reset connection does: the first cuts GETs fail with
// ECONNRESET after after bytes. It records the Range of every GET of the
// key.
type cutter struct {
	rt    http.RoundTripper
	path  string // the key's URL path, /bucket/key
	after int64
	mu    sync.Mutex
	cuts  int
	gets  []string
}

func (c *cutter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet || req.URL.Path != c.path {
		return resp, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gets = append(c.gets, req.Header.Get("Range"))
	if c.cuts > 0 && resp.StatusCode/100 == 2 {
		c.cuts--
		resp.Body = &cutBody{rc: resp.Body, left: c.after}
	}
	return resp, nil
}

type cutBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cutBody) Close() error { return b.rc.Close() }

// TestS3OpenResumes breaks reads mid-stream: a read resumes where it broke
// (a new ranged GET of the same version), gives up after too many
// failures in a row, and refuses to splice two versions of an object.
func TestS3OpenResumes(t *testing.T) {
	srv := s3test.Start(t)
	data := pattern(3, 3<<20+7)
	const after = 1<<20 - 5
	c := &cutter{path: "/" + srv.Bucket + "/resume/f", after: after}
	s, err := storage.OpenS3ForTest(s3Volume(srv, "resume"), func(rt http.RoundTripper) http.RoundTripper { c.rt = rt; return c })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	storagetest.Put(t, s, "f", string(data))
	read := func(off int64) ([]byte, error) {
		r, err := s.Open(ctx, "f", off)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return io.ReadAll(r)
	}

	c.cuts, c.gets = 3, nil
	got, err := read(0)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read through 3 broken connections: %d bytes, %v; want the %d bytes written", len(got), err, len(data))
	}
	want := []string{"", fmt.Sprintf("bytes=%d-", after), fmt.Sprintf("bytes=%d-", 2*after), fmt.Sprintf("bytes=%d-", 3*after)}
	if !slices.Equal(c.gets, want) {
		t.Errorf("the GETs asked for %q; want %q", c.gets, want)
	}

	c.cuts, c.gets = 2, nil
	got, err = read(100)
	if err != nil || !bytes.Equal(got, data[100:]) {
		t.Errorf("read from 100 through 2 broken connections: %d bytes, %v", len(got), err)
	}

	// Connections that break before a byte comes through, every time.
	c.cuts, c.gets, c.after = 1000, nil, 0
	_, err = read(0)
	if err == nil || !strings.Contains(err.Error(), "giving up") {
		t.Errorf("read through connections that always break: %v; want it to give up", err)
	}
	if len(c.gets) < 2 || len(c.gets) > 10 {
		t.Errorf("%d GETs before giving up; want a few", len(c.gets))
	}

	// The object changes between two GETs: the read fails rather than
	// return the start of one version and the end of another.
	c.cuts, c.gets, c.after = 1, nil, 1000
	r, err := s.Open(ctx, "f", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadFull(r, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	storagetest.Put(t, s, "f", "another version")
	if _, err := io.ReadAll(r); err == nil || !strings.Contains(err.Error(), "changed while it was read") {
		t.Errorf("a read across two versions: %v; want an error that says the object changed", err)
	}
}

// TestS3StaysInPrefix puts keys beside a volume's prefix (one that shares
// its first letters, one that is the prefix itself, one at the top) and
// checks that no method of the volume's store sees or touches them.
func TestS3StaysInPrefix(t *testing.T) {
	srv := s3test.Start(t)
	raw := rawClient(t, srv)
	ctx := context.Background()
	outside := map[string]string{
		"vol":                "the prefix itself, as a key",
		"volume/in/a.txt":    "a sibling that starts the same",
		"vol-x.txt":          "another",
		"top.txt":            "at the top of the bucket",
		"other/vol/in/a.txt": "deeper",
	}
	for k, v := range outside {
		if _, err := raw.PutObject(ctx, srv.Bucket, k, strings.NewReader(v), int64(len(v)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s := openS3(t, s3Volume(srv, "vol"))
	defer s.Close()
	for _, n := range []string{"in/a.txt", "in/b.txt", "x.txt", "in/sub/c.txt"} {
		storagetest.Put(t, s, n, n)
	}
	for pattern, want := range map[string][]string{
		"*":       {"x.txt"},
		"*.txt":   {"x.txt"},
		"in/*":    {"in/a.txt", "in/b.txt"},
		"*/*.txt": {"in/a.txt", "in/b.txt"},
		"*/*/*":   {"in/sub/c.txt"},
		"in*/a*":  {"in/a.txt"},
	} {
		objs, err := s.Glob(ctx, pattern)
		if err != nil || !slices.Equal(names(objs), want) {
			t.Errorf("Glob(%q) = %q, %v; want %q", pattern, names(objs), err, want)
		}
	}
	objs, err := s.List(ctx, "")
	if want := []string{"in/a.txt", "in/b.txt", "in/sub/c.txt", "x.txt"}; err != nil || !slices.Equal(names(objs), want) {
		t.Errorf("List(\"\") = %q, %v; want %q", names(objs), err, want)
	}
	for _, bad := range []string{"../top.txt", "../volume/in/a.txt", "..", "/top.txt", "../vol"} {
		if _, err := s.Stat(ctx, bad); err == nil {
			t.Errorf("Stat(%q) succeeded", bad)
		}
		if _, err := s.Open(ctx, bad, 0); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
		if err := s.Remove(ctx, bad); err == nil {
			t.Errorf("Remove(%q) succeeded", bad)
		}
		if err := s.RemoveAll(ctx, bad); err == nil {
			t.Errorf("RemoveAll(%q) succeeded", bad)
		}
		if err := s.Rename(ctx, bad, "stolen"); err == nil {
			t.Errorf("Rename(%q, stolen) succeeded", bad)
		}
		if err := s.Truncate(ctx, bad, 0); err == nil {
			t.Errorf("Truncate(%q) succeeded", bad)
		}
		if _, err := s.Glob(ctx, bad); err == nil {
			t.Errorf("Glob(%q) succeeded", bad)
		}
	}
	for _, fn := range []func() error{
		func() error { return s.Rename(ctx, "in/a.txt", "in/moved.txt") },
		func() error { return s.Truncate(ctx, "in/moved.txt", 2) },
		func() error { return s.Remove(ctx, "x.txt") },
		func() error {
			o := &storage.Output{Store: s, Volume: "lake", Dir: "out", Job: "j", Tenant: "alice"}
			if err := o.Prepare(ctx, false); err != nil {
				return err
			}
			storagetest.Put(t, s, o.AttemptPath(0, 0), "result")
			return o.Commit(ctx, []string{o.AttemptPath(0, 0)}, false)
		},
		func() error { return s.RemoveAll(ctx, "in") },
		func() error { return s.RemoveAll(ctx, "out") },
	} {
		if err := fn(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RemoveAll(ctx, ""); err == nil {
		t.Error("RemoveAll of the volume's root succeeded")
	}
	got := map[string]string{}
	for o := range raw.ListObjects(ctx, srv.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if strings.HasPrefix(o.Key, "vol/") || strings.HasSuffix(o.Key, "/") {
			continue
		}
		obj, err := raw.GetObject(ctx, srv.Bucket, o.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatal(err)
		}
		got[o.Key] = string(b)
	}
	if !maps.Equal(got, outside) {
		t.Errorf("outside the prefix the bucket holds %q; want %q untouched", got, outside)
	}
}

func names(objs []storage.Object) []string {
	out := []string{}
	for _, o := range objs {
		out = append(out, o.Path)
	}
	return out
}

// TestS3WrongCredentials checks that a wrong secret key or an unknown
// access key gives errors that say the credentials are wrong, and never
// show the secret.
func TestS3WrongCredentials(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	for _, c := range []struct{ name, access, secret string }{
		{"wrong secret", srv.AccessKey, "not-the-secret-key-at-all"},
		{"unknown access key", "AKIDONTEXIST", srv.SecretKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := s3Volume(srv, "creds")
			v.AccessKey, v.SecretKey = c.access, c.secret
			s := openS3(t, v)
			defer s.Close()
			var errs []error
			_, err := s.Stat(ctx, "a")
			errs = append(errs, err)
			_, err = s.Glob(ctx, "*.txt")
			errs = append(errs, err)
			_, err = s.List(ctx, "")
			errs = append(errs, err)
			_, err = s.Open(ctx, "a", 0)
			errs = append(errs, err)
			if w, err := s.Create(ctx, "a"); err != nil {
				errs = append(errs, err)
			} else {
				w.Write([]byte("x"))
				errs = append(errs, w.Commit())
			}
			for i, err := range errs {
				if err == nil || !strings.Contains(err.Error(), "credentials") || !strings.Contains(err.Error(), "lake") {
					t.Errorf("operation %d: %v; want an error that says volume lake's credentials are wrong", i, err)
				}
				if err != nil && strings.Contains(err.Error(), c.secret) {
					t.Errorf("operation %d: the error shows the secret key: %v", i, err)
				}
			}
			t.Logf("for example: %v", errs[1])
		})
	}
}

// TestS3NoLeaks checks that writers (committed, aborted mid-part, failed,
// never written) and readers (read to the end, closed early) leave no
// goroutine and no file descriptor once the store is closed: a writer's
// upload goroutine is stopped by Commit or Abort.
func TestS3NoLeaks(t *testing.T) {
	srv := s3test.Start(t)
	ignore := goleak.IgnoreCurrent()
	fds := openFDs(t)
	ctx := context.Background()
	s := openS3(t, s3Volume(srv, "leaks"))
	storagetest.Put(t, s, "committed", "data")
	storagetest.Put(t, s, "empty", "")
	w, err := s.Create(ctx, "aborted")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(pattern(4, storage.S3PartSize+1))
	w.Abort()
	w, err = s.Create(ctx, "never-written")
	if err != nil {
		t.Fatal(err)
	}
	w.Abort()
	r, err := s.Open(ctx, "committed", 1)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(r)
	r.Close()
	storagetest.Put(t, s, "big", string(pattern(5, 4<<20)))
	r, err = s.Open(ctx, "big", 0)
	if err != nil {
		t.Fatal(err)
	}
	r.Read(make([]byte, 10))
	r.Close() // early
	s.Close()

	// An upload that fails: the bucket does not exist.
	v := s3Volume(srv, "")
	v.URL = "s3://no-such-bucket-here"
	s = openS3(t, v)
	w, err = s.Create(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	_, werr := w.Write([]byte("never stored"))
	if err := w.Commit(); err == nil || werr == nil || !strings.Contains(err.Error(), "bucket no-such-bucket-here does not exist") {
		t.Errorf("writing into a missing bucket: Write %v, Commit %v; want errors that say the bucket does not exist", werr, err)
	}
	s.Close()

	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if goleak.Find(ignore) == nil && openFDs(t) <= fds {
			break
		}
		time.Sleep(50 * time.Millisecond) // idle connections close in the background
	}
	goleak.VerifyNone(t, ignore)
	if n := openFDs(t); n > fds {
		t.Errorf("%d file descriptors open after the store's Close; %d before", n, fds)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}

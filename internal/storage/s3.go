package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"math/rand/v2"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3PartSize is the part size of the multipart uploads that write files,
// and so the memory that one open Writer holds: minio-go reads a part into
// one buffer of this size before it sends it. At 16 MiB a file can grow to
// 160 GB (S3 allows 10,000 parts).
const s3PartSize = 16 << 20

// maxCopySize is the largest object that one CopyObject request copies;
// larger ones are copied in parts (ComposeObject).
const maxCopySize = 5 << 30

// s3Config holds what tests change: the transport (to inject failures)
// and the back-off of a resumed read.
type s3Config struct {
	wrapTransport func(http.RoundTripper) http.RoundTripper
	// backoff is the first pause before a broken read is resumed; it
	// doubles with each failure (up to maxBackoff), with full jitter. Zero
	// resumes at once.
	backoff    time.Duration
	maxBackoff time.Duration
	// resumes bounds the consecutive failures of a read that are resumed.
	resumes  int
	partSize uint64
}

func defaultS3Config() s3Config {
	return s3Config{backoff: 100 * time.Millisecond, maxBackoff: 5 * time.Second, resumes: 5, partSize: s3PartSize}
}

// s3Store is an s3 volume: the keys of one bucket under one prefix. Every
// key it makes is the prefix, a slash, and a name that checkName accepted,
// and every key it lists is under the prefix and a slash, so it never
// reads or writes a key outside the volume.
type s3Store struct {
	name     string
	endpoint string // for messages
	bucket   string
	prefix   string // "" or without slashes at its ends
	client   *minio.Client
	core     minio.Core
	tr       *http.Transport // its idle connections are closed by Close
	cfg      s3Config
}

// OpenS3 opens an s3 volume's store. It sends no request: wrong
// credentials or a missing bucket show in the first operation's error.
func OpenS3(v Volume) (Store, error) { return openS3(v, defaultS3Config()) }

func openS3(v Volume, cfg s3Config) (*s3Store, error) {
	if err := v.Validate(); err != nil {
		return nil, err
	}
	if v.Scheme() != "s3" {
		return nil, fmt.Errorf("volume %s: %q is not an s3:// URL", v.Name, v.URL)
	}
	host, secure, err := s3Endpoint(v.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", v.Name, err)
	}
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", v.Name, err)
	}
	var rt http.RoundTripper = tr
	if cfg.wrapTransport != nil {
		rt = cfg.wrapTransport(tr)
	}
	client, err := minio.New(host, &minio.Options{
		Creds:     credentials.NewStaticV4(v.AccessKey, v.SecretKey, ""),
		Secure:    secure,
		Region:    v.Region,
		Transport: rt,
	})
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", v.Name, err)
	}
	scheme := "https://"
	if !secure {
		scheme = "http://"
	}
	return &s3Store{
		name:     v.Name,
		endpoint: scheme + host,
		bucket:   v.Bucket(),
		prefix:   v.Prefix(),
		client:   client,
		core:     minio.Core{Client: client},
		tr:       tr,
		cfg:      cfg,
	}, nil
}

// s3Endpoint reads a volume's Endpoint: http://host:port is plain HTTP,
// https://host:port or host:port is TLS, and "" is AWS.
func s3Endpoint(ep string) (host string, secure bool, err error) {
	switch {
	case ep == "":
		return "s3.amazonaws.com", true, nil
	case strings.HasPrefix(ep, "http://"):
		host = strings.TrimPrefix(ep, "http://")
	case strings.HasPrefix(ep, "https://"):
		host, secure = strings.TrimPrefix(ep, "https://"), true
	case strings.Contains(ep, "://"):
		return "", false, fmt.Errorf("endpoint %q: write http://host:port, https://host:port or host:port", ep)
	default:
		host, secure = ep, true
	}
	host = strings.TrimSuffix(host, "/")
	if host == "" || strings.ContainsAny(host, "/?#@") {
		return "", false, fmt.Errorf("endpoint %q: write http://host:port, https://host:port or host:port, with no path", ep)
	}
	return host, secure, nil
}

func (s *s3Store) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

// key is the object key of a name (checked by checkName).
func (s *s3Store) key(name string) string {
	switch {
	case s.prefix == "":
		return name
	case name == "":
		return s.prefix
	}
	return s.prefix + "/" + name
}

// dirKey is the key prefix of everything under dir: "" for the root of a
// volume that is a whole bucket.
func (s *s3Store) dirKey(dir string) string {
	if k := s.key(dir); k != "" {
		return k + "/"
	}
	return ""
}

// rel is the name of a listed key, and false for a key that is not a file
// of the volume: outside its prefix (never listed, but checked), a
// directory marker ("dir/"), or not a clean path (written by another
// client), which no name could reach.
func (s *s3Store) rel(key string) (string, bool) {
	name := key
	if s.prefix != "" {
		var ok bool
		if name, ok = strings.CutPrefix(key, s.prefix+"/"); !ok {
			return "", false
		}
	}
	if name == "" || strings.HasSuffix(name, "/") || !ValidPath(name) {
		return "", false
	}
	return name, true
}

// errNotExistS3 marks a missing key as fs.ErrNotExist, keeping minio's
// error in the chain.
type errNotExistS3 struct{ err error }

func (e errNotExistS3) Error() string        { return "file does not exist (" + e.err.Error() + ")" }
func (e errNotExistS3) Unwrap() error        { return e.err }
func (e errNotExistS3) Is(target error) bool { return target == fs.ErrNotExist }

// wrap turns minio's errors into ones that name the volume, and say what
// the server refused: a missing key (fs.ErrNotExist), a missing bucket, or
// credentials.
func (s *s3Store) wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	switch code := minio.ToErrorResponse(err).Code; code {
	case minio.NoSuchKey:
		return fmt.Errorf("%s %s:%s: %w", op, s.name, name, errNotExistS3{err})
	case minio.NoSuchBucket:
		return fmt.Errorf("%s %s:%s: bucket %s does not exist at %s: %w", op, s.name, name, s.bucket, s.endpoint, err)
	case "InvalidAccessKeyId":
		return fmt.Errorf("%s %s:%s: the S3 server at %s does not know volume %s's access key (wrong credentials): %w", op, s.name, name, s.endpoint, s.name, err)
	case "SignatureDoesNotMatch":
		return fmt.Errorf("%s %s:%s: the S3 server at %s refused the signature: volume %s's secret key is wrong (wrong credentials): %w", op, s.name, name, s.endpoint, s.name, err)
	case minio.AccessDenied:
		return fmt.Errorf("%s %s:%s: the S3 server at %s denied access: volume %s's credentials are wrong, or lack the right to do this in bucket %s: %w", op, s.name, name, s.endpoint, s.name, s.bucket, err)
	}
	return fmt.Errorf("%s %s:%s: %w", op, s.name, name, err)
}

// notAFile refuses the root, which is not a file.
func (s *s3Store) notAFile(name string) error {
	if name == "" || name == "." {
		return refused("the root of volume %s is not a file", s.name)
	}
	return nil
}

func (s *s3Store) Glob(ctx context.Context, pattern string) ([]Object, error) {
	if err := checkPattern(pattern); err != nil {
		return nil, err
	}
	if pattern == "" || pattern == "." {
		return nil, nil
	}
	elems := strings.Split(pattern, "/")
	// List from the pattern's literal prefix: the elements before the
	// first one with a meta character, and that one's literal head. Only a
	// pattern with more elements after that one needs a recursive list.
	first := slices.IndexFunc(elems, hasMeta)
	var prefix string
	recursive := false
	if first < 0 {
		prefix = pattern
	} else {
		head := elems[first][:strings.IndexAny(elems[first], `*?[\`)]
		prefix = strings.Join(append(slices.Clone(elems[:first]), head), "/")
		recursive = first < len(elems)-1
	}
	listPrefix := s.key(prefix)
	if prefix == "" {
		listPrefix = s.dirKey("")
	}
	var out []Object
	for o, err := range s.list(ctx, listPrefix, recursive) {
		if err != nil {
			return nil, s.wrap("glob", pattern, err)
		}
		name, ok := s.rel(o.Key)
		if !ok || !globMatch(elems, strings.Split(name, "/")) {
			continue
		}
		out = append(out, Object{Path: name, Size: o.Size})
	}
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// globMatch matches a name's elements against a pattern's, as the file
// store's walk does: as many elements, each matched with path.Match, and a
// wildcard never matches a hidden name unless it starts the same way.
func globMatch(pattern, name []string) bool {
	if len(pattern) != len(name) {
		return false
	}
	for i, p := range pattern {
		if ok, _ := path.Match(p, name[i]); !ok {
			return false
		}
		if hasMeta(p) && hidden(name[i]) && !hidden(p) {
			return false
		}
	}
	return true
}

// list yields the objects whose keys start with prefix, with their errors;
// not recursive, it yields the objects of prefix's "directory" only (the
// common prefixes below it are directories, and skipped). Stopping the
// loop early stops the listing.
func (s *s3Store) list(ctx context.Context, prefix string, recursive bool) iter.Seq2[minio.ObjectInfo, error] {
	return func(yield func(minio.ObjectInfo, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		for o := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: recursive}) {
			if o.Err != nil {
				yield(o, o.Err)
				return
			}
			if !strings.HasPrefix(o.Key, prefix) {
				continue // never, from a correct server
			}
			if !yield(o, nil) {
				return
			}
		}
	}
}

func (s *s3Store) Stat(ctx context.Context, name string) (Object, error) {
	if err := checkName(name); err != nil {
		return Object{}, err
	}
	if err := s.notAFile(name); err != nil {
		return Object{}, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, s.key(name), minio.StatObjectOptions{})
	if err != nil {
		return Object{}, s.wrap("stat", name, err)
	}
	return Object{Path: name, Size: info.Size}, nil
}

func (s *s3Store) List(ctx context.Context, dir string) ([]Object, error) {
	if err := checkName(dir); err != nil {
		return nil, err
	}
	if dir == "." {
		dir = ""
	}
	var out []Object
	for o, err := range s.list(ctx, s.dirKey(dir), true) {
		if err != nil {
			return nil, s.wrap("list", dir, err)
		}
		if name, ok := s.rel(o.Key); ok {
			out = append(out, Object{Path: name, Size: o.Size})
		}
	}
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

func (s *s3Store) Open(ctx context.Context, name string, offset int64) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := s.notAFile(name); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("open %s:%s: negative offset %d", s.name, name, offset)
	}
	r := &s3Reader{s: s, ctx: ctx, name: name, off: offset}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

// s3Reader reads an object from an offset with one ranged GET, streamed as
// it is read. A GET that breaks mid-stream is resumed at the current offset
// with a new ranged GET of the same version (If-Match its ETag), after a
// back-off, up to resumes consecutive failures. minio-go retries each GET
// itself before it gives up (network errors, 5xx, throttling).
type s3Reader struct {
	s    *s3Store
	ctx  context.Context
	name string
	etag string
	body io.ReadCloser // nil at the end, or after a failure
	off  int64         // the next byte to read
	end  int64         // the object's size
	// fails counts the consecutive failures; a read that makes progress
	// resets it.
	fails  int
	closed bool
}

// open sends the GET from r.off.
func (r *s3Reader) open() error {
	var opts minio.GetObjectOptions
	if r.off > 0 {
		opts.SetRange(r.off, 0)
	}
	if r.etag != "" {
		opts.SetMatchETag(r.etag)
	}
	body, info, hdr, err := r.s.core.GetObject(r.ctx, r.s.bucket, r.s.key(r.name), opts)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "InvalidRange" {
			// The object exists, and the offset is at or past its end:
			// there is nothing to read, as a file read there.
			r.end = r.off
			return nil
		}
		if minio.ToErrorResponse(err).Code == "PreconditionFailed" {
			return fmt.Errorf("read %s:%s: the object changed while it was read (at byte %d): %w", r.s.name, r.name, r.off, err)
		}
		return r.s.wrap("open", r.name, err)
	}
	r.body = body
	r.etag = strings.Trim(info.ETag, `"`)
	r.end = r.off + info.Size
	if total, ok := contentRangeSize(hdr.Get("Content-Range")); ok {
		r.end = total
	}
	return nil
}

// contentRangeSize reads the complete length of "bytes a-b/size".
func contentRangeSize(cr string) (int64, bool) {
	_, size, ok := strings.Cut(cr, "/")
	if !ok || size == "*" {
		return 0, false
	}
	var n int64
	if _, err := fmt.Sscan(size, &n); err != nil {
		return 0, false
	}
	return n, true
}

func (r *s3Reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errors.New("storage: read of a closed reader")
	}
	for {
		if r.off >= r.end {
			r.closeBody()
			return 0, io.EOF
		}
		if r.body == nil {
			if err := r.resume(); err != nil {
				return 0, err
			}
			continue
		}
		n, err := r.body.Read(p)
		r.off += int64(n)
		if n > 0 {
			r.fails = 0
		}
		if err == nil || err == io.EOF && r.off >= r.end {
			if n > 0 {
				return n, nil
			}
			continue
		}
		if r.ctx.Err() != nil {
			return n, r.s.wrap("read", r.name, context.Cause(r.ctx))
		}
		// A transient failure (a reset connection, a body cut short): drop
		// the body, and resume at r.off on the next call.
		r.closeBody()
		r.fails++
		if n > 0 {
			return n, nil
		}
	}
}

// resume waits for the back-off and sends the GET again from r.off, until
// it succeeds, the server refuses it, the context ends, or the read has
// failed more than resumes times in a row.
func (r *s3Reader) resume() error {
	cfg := r.s.cfg
	for {
		if r.fails > cfg.resumes {
			return fmt.Errorf("read %s:%s: the connection broke at byte %d %d times in a row; giving up", r.s.name, r.name, r.off, r.fails)
		}
		if d := backoff(cfg.backoff, cfg.maxBackoff, r.fails); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.ctx.Done():
				t.Stop()
				return r.s.wrap("read", r.name, context.Cause(r.ctx))
			}
		}
		err := r.open()
		if err == nil {
			return nil
		}
		var re minio.ErrorResponse
		if errors.As(err, &re) || r.ctx.Err() != nil {
			return err // the server answered, or the caller gave up
		}
		r.fails++
	}
}

// backoff is the pause before retry n (counted from 1): base doubled
// n-1 times, capped, with full jitter.
func backoff(base, max time.Duration, n int) time.Duration {
	if base <= 0 || n <= 0 {
		return 0
	}
	d := base << min(n-1, 20)
	if d > max || d <= 0 {
		d = max
	}
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

func (r *s3Reader) closeBody() {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
}

// Close ends the read; an unread body is not drained: its connection is
// closed.
func (r *s3Reader) Close() error {
	r.closed = true
	r.closeBody()
	return nil
}

// s3Writer streams what is written into one multipart upload (minio-go's
// PutObject of unknown size): an io.Pipe feeds a goroutine that the first
// Write starts, and Commit or Abort stops (one of them must be called).
// The upload runs under Create's context: cancelling it fails the writer. The object appears when the
// upload completes, in Commit; Abort cancels the upload and removes its
// parts. One part is in memory at a time (s3PartSize).
type s3Writer struct {
	s      *s3Store
	ctx    context.Context // the upload's, cancelled by Abort
	cancel context.CancelCauseFunc
	name   string
	pw     *io.PipeWriter
	done   chan struct{} // closed when the upload goroutine returns
	err    error         // the upload's result, once done is closed
	ended  bool          // Commit or Abort was called
}

var errAborted = errors.New("storage: writer aborted")

func (s *s3Store) Create(ctx context.Context, name string) (Writer, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, refused("cannot write the root of volume %s as a file", s.name)
	}
	uctx, cancel := context.WithCancelCause(ctx)
	return &s3Writer{s: s, ctx: uctx, cancel: cancel, name: name}, nil
}

// start starts the upload goroutine.
func (w *s3Writer) start() {
	pr, pw := io.Pipe()
	w.pw = pw
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		_, err := w.s.client.PutObject(w.ctx, w.s.bucket, w.s.key(w.name), pr, -1, minio.PutObjectOptions{
			PartSize:    w.s.cfg.partSize,
			ContentType: "application/octet-stream",
		})
		if err == nil {
			err = errors.New("storage: write after the upload ended")
		} else {
			w.err = err
		}
		// Unblock a Write waiting for the upload to read.
		pr.CloseWithError(err)
	}()
}

func (w *s3Writer) Write(b []byte) (int, error) {
	if w.ended {
		return 0, errors.New("storage: write after Commit or Abort")
	}
	if len(b) == 0 {
		return 0, nil
	}
	if w.pw == nil {
		w.start()
	}
	n, err := w.pw.Write(b)
	if err != nil {
		return n, w.s.wrap("write", w.name, err)
	}
	return n, nil
}

func (w *s3Writer) Commit() error {
	if w.ended {
		return errors.New("storage: writer already committed or aborted")
	}
	w.ended = true
	defer w.cancel(nil)
	if w.pw == nil {
		// Nothing was written: one PUT of an empty object.
		_, err := w.s.client.PutObject(w.ctx, w.s.bucket, w.s.key(w.name), strings.NewReader(""), 0, minio.PutObjectOptions{ContentType: "application/octet-stream"})
		return w.s.wrap("commit", w.name, err)
	}
	w.pw.Close()
	<-w.done
	if w.err != nil {
		w.s.abortUploads(w.ctx, w.name)
	}
	return w.s.wrap("commit", w.name, w.err)
}

func (w *s3Writer) Abort() {
	if w.ended {
		return
	}
	w.ended = true
	if w.pw == nil {
		w.cancel(errAborted)
		return
	}
	w.pw.CloseWithError(errAborted)
	w.cancel(errAborted)
	<-w.done
	w.s.abortUploads(w.ctx, w.name)
}

// abortUploads makes sure that no incomplete multipart upload of name is
// left behind (its parts take space, unseen, until a lifecycle rule
// removes them). minio-go aborts a failed upload itself; this catches the
// ones whose abort request failed. It aborts every incomplete upload of
// that exact key: two writers of one name at once are a conflict anyway.
func (s *s3Store) abortUploads(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	key := s.key(name)
	for u := range s.client.ListIncompleteUploads(ctx, s.bucket, key, false) {
		if u.Err == nil && u.Key == key {
			s.core.AbortMultipartUpload(ctx, s.bucket, key, u.UploadID)
		}
	}
}

func (s *s3Store) Rename(ctx context.Context, from, to string) error {
	for _, n := range []string{from, to} {
		if err := checkName(n); err != nil {
			return err
		}
		if n == "" {
			return refused("cannot move the root of volume %s", s.name)
		}
	}
	if from == to {
		_, err := s.Stat(ctx, from)
		return err
	}
	info, err := s.client.StatObject(ctx, s.bucket, s.key(from), minio.StatObjectOptions{})
	if err != nil {
		return s.wrap("rename", from, err)
	}
	dst := minio.CopyDestOptions{Bucket: s.bucket, Object: s.key(to)}
	src := minio.CopySrcOptions{Bucket: s.bucket, Object: s.key(from), MatchETag: strings.Trim(info.ETag, `"`)}
	if info.Size <= maxCopySize {
		_, err = s.client.CopyObject(ctx, dst, src)
	} else {
		_, err = s.client.ComposeObject(ctx, dst, src)
	}
	if err != nil {
		return s.wrap("rename", from+" to "+to, err)
	}
	return s.wrap("rename", from, s.client.RemoveObject(ctx, s.bucket, s.key(from), minio.RemoveObjectOptions{}))
}

// Truncate copies the object's first size bytes over it, on the server
// (ComposeObject with a range); S3 cannot change an object in place. An
// object cannot be extended.
func (s *s3Store) Truncate(ctx context.Context, name string, size int64) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := s.notAFile(name); err != nil {
		return err
	}
	info, err := s.client.StatObject(ctx, s.bucket, s.key(name), minio.StatObjectOptions{})
	if err != nil {
		return s.wrap("truncate", name, err)
	}
	switch {
	case size < 0 || size > info.Size:
		return fmt.Errorf("truncate %s:%s: cannot cut an object of %d bytes to %d bytes (an s3 volume only shortens objects)", s.name, name, info.Size, size)
	case size == info.Size:
		return nil
	case size == 0:
		_, err = s.client.PutObject(ctx, s.bucket, s.key(name), strings.NewReader(""), 0, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	default:
		_, err = s.client.ComposeObject(ctx,
			minio.CopyDestOptions{Bucket: s.bucket, Object: s.key(name)},
			minio.CopySrcOptions{Bucket: s.bucket, Object: s.key(name), MatchETag: strings.Trim(info.ETag, `"`), MatchRange: true, Start: 0, End: size - 1})
	}
	return s.wrap("truncate", name, err)
}

func (s *s3Store) Remove(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := s.notAFile(name); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.bucket, s.key(name), minio.RemoveObjectOptions{})
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return nil
	}
	return s.wrap("remove", name, err)
}

// RemoveAll removes dir (a file of that name, if any) and every key under
// dir/, listed and removed in batches of up to 1,000 (DeleteObjects).
func (s *s3Store) RemoveAll(ctx context.Context, dir string) error {
	if err := checkName(dir); err != nil {
		return err
	}
	if dir == "" || dir == "." {
		return refused("cannot remove the root of volume %s", s.name)
	}
	if err := s.Remove(ctx, dir); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var listErr error
	keys := func(yield func(minio.ObjectInfo) bool) {
		for o, err := range s.list(ctx, s.dirKey(dir), true) {
			if err != nil {
				listErr = err
				return
			}
			if !yield(minio.ObjectInfo{Key: o.Key}) {
				return
			}
		}
	}
	results, err := s.client.RemoveObjectsWithIter(ctx, s.bucket, keys, minio.RemoveObjectsOptions{})
	if err != nil {
		return s.wrap("remove", dir, err)
	}
	var errs []error
	for r := range results {
		if r.Err != nil && minio.ToErrorResponse(r.Err).Code != minio.NoSuchKey {
			errs = append(errs, fmt.Errorf("%s: %w", r.ObjectName, r.Err))
		}
	}
	if listErr != nil {
		errs = append(errs, listErr)
	}
	return s.wrap("remove", dir, errors.Join(errs...))
}

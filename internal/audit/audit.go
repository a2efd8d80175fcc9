package audit

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options say where the log goes and how much of it is kept: it is
// rotated past MaxSize bytes, and at most MaxBackups rotated files
// younger than MaxAge stay. Disable turns the log off.
type Options struct {
	Path       string
	MaxSize    int64
	MaxBackups int
	MaxAge     time.Duration
	Disable    bool
}

// Log writes one JSON line per audited request.
type Log struct {
	logger *slog.Logger // nil: auditing is off
	file   *rotatingFile
}

// New is the log opts describe; now stamps its records and names its
// rotated files. The file is opened at the first record.
func New(opts Options, now func() time.Time) *Log {
	if opts.Disable {
		return &Log{}
	}
	f := &rotatingFile{path: opts.Path, maxSize: opts.MaxSize, maxBackups: opts.MaxBackups, maxAge: opts.MaxAge, now: now}
	h := slog.NewJSONHandler(f, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			return slog.Time(slog.TimeKey, now().UTC())
		}
		return a
	}})
	return &Log{logger: slog.New(h), file: f}
}

// Close closes the log's file; later records are lost.
func (l *Log) Close() error {
	if l.file == nil {
		return nil
	}
	return l.file.Close()
}

// Record is one audited request. Tenant, TokenID and Role are zero if
// the request was not authenticated.
type Record struct {
	Tenant  string
	TokenID string
	Role    string
	Action  string
	Object  string
	Method  string
	Path    string
	Remote  string
	Status  int
	Reason  string // why it was refused
	Elapsed time.Duration
}

// Write logs r; the outcome is "ok", "refused" (4xx) or "error" (5xx).
func (l *Log) Write(r Record) {
	if l.logger == nil {
		return
	}
	outcome := "ok"
	switch {
	case r.Status >= 500:
		outcome = "error"
	case r.Status >= 400:
		outcome = "refused"
	}
	l.logger.Info("audit",
		slog.String("tenant", r.Tenant), slog.String("token_id", r.TokenID), slog.String("role", r.Role),
		slog.String("action", r.Action), slog.String("object", r.Object), slog.String("outcome", outcome),
		slog.Int("status", r.Status), slog.String("remote", r.Remote), slog.String("method", r.Method),
		slog.String("path", r.Path), slog.String("reason", r.Reason), slog.Int64("elapsed_us", r.Elapsed.Microseconds()))
}

// Audited reports whether a request is audited: every change of state,
// and every refusal of a read.
func Audited(method string, status int) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return true
	}
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return true
	}
	return false
}

// Writer records what a handler answered: its status, the object it
// names (SetObject) and, for an error, its message.
type Writer struct {
	http.ResponseWriter
	status int
	object string
	errMsg []byte // the start of an error answer's body
}

// NewWriter wraps w; object is what the request names until the handler
// says otherwise.
func NewWriter(w http.ResponseWriter, object string) *Writer {
	return &Writer{ResponseWriter: w, object: object}
}

func (w *Writer) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *Writer) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.status >= 400 && len(w.errMsg) < 1024 {
		w.errMsg = append(w.errMsg, b[:min(len(b), 1024-len(w.errMsg))]...)
	}
	return w.ResponseWriter.Write(b)
}

// SetObject names what the request acts on.
func (w *Writer) SetObject(o string) { w.object = o }

// Object is what the request acts on.
func (w *Writer) Object() string { return w.object }

// Status is the answer's status (0: none yet).
func (w *Writer) Status() int { return w.status }

// Flush passes on to the server's writer: event streams flush.
func (w *Writer) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Reason is the message of an error answer.
func (w *Writer) Reason() string {
	if len(w.errMsg) == 0 {
		return ""
	}
	var e struct{ Error string }
	if json.Unmarshal(w.errMsg, &e) == nil {
		return e.Error
	}
	return strings.TrimSpace(string(w.errMsg))
}

// rotatingFile is an append-only log file that is renamed aside when it
// passes maxSize, keeping at most maxBackups rotated files younger than
// maxAge. It does its pruning in Write, on the caller's goroutine:
// lumberjack (v2.2.1) starts a goroutine on the first write that nothing
// ever stops (natefinch/lumberjack#56), and every goroutine here has an
// owner that stops it.
type rotatingFile struct {
	path       string
	maxSize    int64
	maxBackups int
	maxAge     time.Duration
	now        func() time.Time

	mu     sync.Mutex // protects f, size and closed
	f      *os.File
	size   int64
	closed bool
}

// backupTimeFormat names rotated files: audit-2006-01-02T15-04-05.000.log,
// which sort as they were made.
const backupTimeFormat = "2006-01-02T15-04-05.000"

func (r *rotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, os.ErrClosed
	}
	if r.f == nil {
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	if r.size > 0 && r.size+int64(len(p)) > r.maxSize {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *rotatingFile) open() error {
	if err := os.MkdirAll(filepath.Dir(r.path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, fi.Size()
	return nil
}

// rotate moves the file aside and opens a new one; with mu held.
func (r *rotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return err
	}
	r.f = nil
	ext := filepath.Ext(r.path)
	stem := strings.TrimSuffix(r.path, ext)
	name := stem + "-" + r.now().UTC().Format(backupTimeFormat) + ext
	for i := 1; ; i++ {
		if _, err := os.Stat(name); os.IsNotExist(err) {
			break
		}
		name = fmt.Sprintf("%s-%s.%d%s", stem, r.now().UTC().Format(backupTimeFormat), i, ext)
	}
	if err := os.Rename(r.path, name); err != nil {
		return err
	}
	r.prune()
	return r.open()
}

// prune deletes the rotated files past maxBackups or maxAge.
func (r *rotatingFile) prune() {
	dir := filepath.Dir(r.path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type backup struct {
		name string
		t    time.Time
	}
	var bs []backup
	for _, e := range entries {
		if t, ok := parseBackupName(filepath.Base(r.path), e.Name()); ok {
			bs = append(bs, backup{e.Name(), t})
		}
	}
	slices.SortFunc(bs, func(a, b backup) int { return b.t.Compare(a.t) }) // newest first
	now := r.now()
	for i, b := range bs {
		if i >= r.maxBackups || (r.maxAge > 0 && now.Sub(b.t) > r.maxAge) {
			os.Remove(filepath.Join(dir, b.name))
		}
	}
}

// parseBackupName reports whether name is a rotated file of the log
// named base, and when it was rotated.
func parseBackupName(base, name string) (time.Time, bool) {
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	rest, ok := strings.CutPrefix(name, stem+"-")
	if !ok {
		return time.Time{}, false
	}
	if rest, ok = strings.CutSuffix(rest, ext); !ok || len(rest) < len(backupTimeFormat) {
		return time.Time{}, false
	}
	ts, suffix := rest[:len(backupTimeFormat)], rest[len(backupTimeFormat):]
	if suffix != "" {
		// A collision's counter: ".N".
		n, ok := strings.CutPrefix(suffix, ".")
		if !ok || n == "" || strings.Trim(n, "0123456789") != "" {
			return time.Time{}, false
		}
	}
	t, err := time.Parse(backupTimeFormat, ts)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// Close closes the file; later writes fail.
func (r *rotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

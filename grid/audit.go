package grid

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/jobspec"
)

// AuditConfig is the [audit] table of the coordinator config: where the
// audit log goes and how much of it is kept.
type AuditConfig struct {
	// Path of the log, relative to the config file; default
	// STATE_DIR/coordinator/audit.log.
	Path string `toml:"path,omitempty"`
	// Disable turns the audit log off.
	Disable bool `toml:"disable,omitempty"`
	// MaxSize is the size at which the log is rotated (default 100MiB).
	MaxSize jobspec.Size `toml:"max_size,omitempty"`
	// MaxBackups is how many rotated files are kept (default 10), and
	// MaxAge how long (default 720h, 30 days); older ones are deleted
	// when the log rotates.
	MaxBackups int              `toml:"max_backups,omitempty"`
	MaxAge     jobspec.Duration `toml:"max_age,omitempty"`
}

// Defaults of the audit log.
const (
	DefaultAuditMaxSize    = 100 * jobspec.MiB
	DefaultAuditMaxBackups = 10
	DefaultAuditMaxAge     = 30 * 24 * time.Hour
)

func (a AuditConfig) validate() []error {
	var errs []error
	if a.MaxSize < 0 || a.MaxBackups < 0 || a.MaxAge < 0 {
		errs = append(errs, errors.New("audit.max_size, audit.max_backups and audit.max_age cannot be negative"))
	}
	if a.MaxSize > 0 && a.MaxSize < 4*jobspec.KiB {
		errs = append(errs, fmt.Errorf("audit.max_size %s: at least 4KiB", a.MaxSize))
	}
	if strings.HasSuffix(a.Path, string(filepath.Separator)) {
		errs = append(errs, fmt.Errorf("audit.path %q names a directory: name the log file", a.Path))
	}
	return errs
}

// withDefaults fills a's zero fields; stateDir is the coordinator's.
func (a AuditConfig) withDefaults(stateDir string) AuditConfig {
	if a.Path == "" {
		a.Path = filepath.Join(stateDir, "coordinator", "audit.log")
	}
	if a.MaxSize == 0 {
		a.MaxSize = DefaultAuditMaxSize
	}
	if a.MaxBackups == 0 {
		a.MaxBackups = DefaultAuditMaxBackups
	}
	if a.MaxAge == 0 {
		a.MaxAge = jobspec.Duration(DefaultAuditMaxAge)
	}
	return a
}

// auditLog writes one JSON line per audited request.
type auditLog struct {
	logger *slog.Logger // nil: auditing is off
	file   *rotatingFile
}

func newAuditLog(cfg AuditConfig, now func() time.Time) *auditLog {
	if cfg.Disable {
		return &auditLog{}
	}
	f := &rotatingFile{path: cfg.Path, maxSize: int64(cfg.MaxSize), maxBackups: cfg.MaxBackups, maxAge: time.Duration(cfg.MaxAge), now: now}
	h := slog.NewJSONHandler(f, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			return slog.Time(slog.TimeKey, now().UTC())
		}
		return a
	}})
	return &auditLog{logger: slog.New(h), file: f}
}

func (l *auditLog) close() error {
	if l.file == nil {
		return nil
	}
	return l.file.Close()
}

// auditRecord is one audited request.
type auditRecord struct {
	p       principal // zero if the request was not authenticated
	action  string
	object  string
	method  string
	path    string
	remote  string
	status  int
	reason  string // why it was refused
	elapsed time.Duration
}

func (l *auditLog) write(r auditRecord) {
	if l.logger == nil {
		return
	}
	outcome := "ok"
	switch {
	case r.status >= 500:
		outcome = "error"
	case r.status >= 400:
		outcome = "refused"
	}
	role := string(r.p.role)
	l.logger.Info("audit",
		slog.String("tenant", r.p.tenant), slog.String("token_id", r.p.tokenID), slog.String("role", role),
		slog.String("action", r.action), slog.String("object", r.object), slog.String("outcome", outcome),
		slog.Int("status", r.status), slog.String("remote", r.remote), slog.String("method", r.method),
		slog.String("path", r.path), slog.String("reason", r.reason), slog.Int64("elapsed_us", r.elapsed.Microseconds()))
}

// audited reports whether a request is audited: every change of state,
// and every refusal of a read.
func audited(method string, status int) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return true
	}
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return true
	}
	return false
}

// auditWriter records what a handler answered: its status, the object
// it names (noteObject) and, for an error, its message.
type auditWriter struct {
	http.ResponseWriter
	status int
	object string
	errMsg []byte // the start of an error answer's body
}

func (w *auditWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *auditWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.status >= 400 && len(w.errMsg) < 1024 {
		w.errMsg = append(w.errMsg, b[:min(len(b), 1024-len(w.errMsg))]...)
	}
	return w.ResponseWriter.Write(b)
}

func (w *auditWriter) setObject(o string) { w.object = o }

// Flush passes on to the server's writer: event streams flush.
func (w *auditWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// reason is the message of an error answer.
func (w *auditWriter) reason() string {
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

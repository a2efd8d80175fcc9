package grid

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/audit"
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

// newAuditLog is the audit log cfg (with its defaults) describes.
func newAuditLog(cfg AuditConfig, now func() time.Time) *audit.Log {
	return audit.New(audit.Options{Path: cfg.Path, MaxSize: int64(cfg.MaxSize), MaxBackups: cfg.MaxBackups, MaxAge: time.Duration(cfg.MaxAge), Disable: cfg.Disable}, now)
}

package sdk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wasmgrid/wasmgrid/internal/guestbuild"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
)

// Job is a job ready to submit: its spec and the bytes of its modules.
type Job struct {
	Spec    *jobspec.Spec
	Modules map[string][]byte
	// Params and Conf are what the spec was loaded with; a remote grid
	// parses the spec again with them.
	Params, Conf map[string]string

	text []byte // the spec's text, for a job built in Go (NewJob)
}

// LoadJob reads the job spec at path with its parameters and settings,
// checks its inputs and outputs, and builds or reads its modules.
func LoadJob(ctx context.Context, path string, params, conf map[string]string) (*Job, error) {
	spec, err := jobspec.Load(path, params, conf)
	if err != nil {
		return nil, err
	}
	if err := spec.Check(); err != nil {
		return nil, err
	}
	job, err := loadModules(ctx, spec)
	if err != nil {
		return nil, err
	}
	job.Params, job.Conf = params, conf
	return job, nil
}

// loadModules builds or reads a spec's modules.
func loadModules(ctx context.Context, spec *jobspec.Spec) (*Job, error) {
	job := &Job{Spec: spec, Modules: map[string][]byte{}}
	for _, m := range spec.Modules {
		path, goDir := m.Path, m.GoDir
		if m.Dir != "" {
			if jobspec.HasGoSources(m.Dir) {
				goDir = m.Dir
			} else {
				path = filepath.Join(m.Dir, jobspec.GuestWasm)
			}
		}
		if goDir != "" {
			var err error
			if path, err = buildGo(ctx, goDir); err != nil {
				return nil, fmt.Errorf("%s:%d: modules.%s: %w", spec.File, m.Line, m.Name, err)
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: modules.%s: %w", spec.File, m.Line, m.Name, err)
		}
		job.Modules[m.Name] = b
	}
	return job, nil
}

// buildGo builds a Go guest into the user's cache; the go command's own
// cache makes a rebuild of unchanged sources cheap.
func buildGo(ctx context.Context, dir string) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	sum := sha256.Sum256([]byte(dir))
	out := filepath.Join(cache, "wasmgrid", "build", hex.EncodeToString(sum[:8])+".wasm")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	// Build beside the target and rename, so that two runs building the
	// same guest at once never read a half-written module.
	tmp := fmt.Sprintf("%s.tmp-%d", out, os.Getpid())
	if err := guestbuild.BuildGo(ctx, dir, tmp); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return out, os.Rename(tmp, out)
}

package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"time"
)

// SuccessFile marks a complete output. It is written last, and holds the
// Manifest: who wrote the output and which files are its parts.
const SuccessFile = "_SUCCESS"

// Manifest is what a _SUCCESS file holds (JSON).
type Manifest struct {
	Version   int       `json:"version"`
	Job       string    `json:"job"`
	Tenant    string    `json:"tenant"`
	Committed time.Time `json:"committed"`
	Parts     []string  `json:"parts"`
}

// maxManifest bounds the _SUCCESS file read back: a larger one is not ours.
const maxManifest = 16 << 20

// Output is a job's output directory in a volume. The job's attempts
// write into a staging area beside it (".NAME.wasmgrid-staging"), which
// only this job uses while it runs; Commit moves the winning attempts'
// files into place and writes _SUCCESS last. Nothing outside Dir and its
// staging area is ever written or removed.
type Output struct {
	Store  Store
	Volume string // for messages
	Dir    string // the output directory, relative to the volume's root
	Job    string
	Tenant string
}

// Staging is the job's private area beside Dir.
func (o *Output) Staging() string {
	return path.Join(path.Dir(o.Dir), "."+path.Base(o.Dir)+".wasmgrid-staging")
}

// AttemptPath is where an attempt of a result task writes its part.
func (o *Output) AttemptPath(partition, attempt int) string {
	return path.Join(o.Staging(), "_temporary", fmt.Sprintf("%s.attempt-%d", PartName(partition), attempt))
}

// PartName is the name of a result partition's file.
func PartName(p int) string { return fmt.Sprintf("part-%05d", p) }

func (o *Output) String() string { return o.Volume + ":" + o.Dir }

// Prepare checks that the job may write Dir, before anything runs: Dir
// must be absent or empty, or, with overwrite, hold an earlier output of
// the same tenant (a _SUCCESS manifest that names it). What a crashed job
// left in the staging area is removed.
func (o *Output) Prepare(ctx context.Context, overwrite bool) error {
	if o.Dir == "" {
		return refused("%s: write into a directory inside volume %s, not its root", o, o.Volume)
	}
	if _, err := o.replaces(ctx, overwrite); err != nil {
		return err
	}
	return o.Store.RemoveAll(ctx, o.Staging())
}

// replaces says whether Dir may be written, and returns the manifest of
// the output it replaces, if any.
func (o *Output) replaces(ctx context.Context, overwrite bool) (*Manifest, error) {
	objs, err := o.Store.List(ctx, o.Dir)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, nil
	}
	m, err := o.manifest(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case m == nil:
		return nil, refused("output %s is not empty and holds no output of a wasmgrid job (no _SUCCESS manifest): choose another directory; it is never replaced", o)
	case m.Tenant != o.Tenant:
		return nil, refused("output %s holds another tenant's output: choose another directory", o)
	case !overwrite:
		return nil, refused("output %s already holds the output of %s (committed %s): pass --conf sink.overwrite=true to replace it, or choose another directory", o, m.Job, m.Committed.Format(time.RFC3339))
	}
	return m, nil
}

// manifest reads Dir's _SUCCESS, or returns nil if there is none or it is
// not a manifest.
func (o *Output) manifest(ctx context.Context) (*Manifest, error) {
	r, err := o.Store.Open(ctx, path.Join(o.Dir, SuccessFile), 0)
	if IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxManifest))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if json.Unmarshal(b, &m) != nil || m.Tenant == "" || m.Version != 1 {
		return nil, nil
	}
	return &m, nil
}

// Commit publishes the result: parts[p] is the attempt file that won
// partition p ("" writes an empty part). It checks Dir again (another job
// may have written it since Prepare), moves the parts into place and
// writes _SUCCESS last; with overwrite, the earlier output of the same
// tenant is replaced (and only the files its manifest lists are removed,
// on a store that cannot move a directory).
func (o *Output) Commit(ctx context.Context, parts []string, overwrite bool) error {
	old, err := o.replaces(ctx, overwrite)
	if err != nil {
		return err
	}
	m := Manifest{Version: 1, Job: o.Job, Tenant: o.Tenant, Committed: time.Now().UTC()}
	for p := range parts {
		m.Parts = append(m.Parts, PartName(p))
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if dr, ok := o.Store.(dirRenamer); ok {
		return o.commitDir(ctx, dr, parts, manifest, old != nil)
	}
	if old != nil {
		// The old manifest goes first: the directory is never seen complete
		// with a mix of old and new parts.
		if err := o.Store.Remove(ctx, path.Join(o.Dir, SuccessFile)); err != nil {
			return err
		}
		for _, p := range old.Parts {
			if p == SuccessFile || p == "" || path.Base(p) != p || checkName(p) != nil {
				continue // a manifest names files of its directory, nothing else
			}
			if !slices.Contains(m.Parts, p) {
				if err := o.Store.Remove(ctx, path.Join(o.Dir, p)); err != nil {
					return err
				}
			}
		}
	}
	for p, file := range parts {
		if err := o.place(ctx, file, path.Join(o.Dir, PartName(p))); err != nil {
			return err
		}
	}
	if err := o.write(ctx, path.Join(o.Dir, SuccessFile), manifest); err != nil {
		return err
	}
	return o.Store.RemoveAll(ctx, o.Staging())
}

// commitDir gathers the parts and the manifest in the staging area and
// moves it into place in one rename.
func (o *Output) commitDir(ctx context.Context, dr dirRenamer, parts []string, manifest []byte, replace bool) error {
	st := o.Staging()
	out := path.Join(st, "out")
	for p, file := range parts {
		if err := o.place(ctx, file, path.Join(out, PartName(p))); err != nil {
			return err
		}
	}
	if err := o.write(ctx, path.Join(out, SuccessFile), manifest); err != nil {
		return err
	}
	old := path.Join(st, "old")
	if replace {
		if err := dr.RenameDir(ctx, o.Dir, old); err != nil {
			return err
		}
	} else if err := o.Store.Remove(ctx, o.Dir); err != nil {
		// An empty directory (no files were found in it) that the rename
		// below cannot replace; removing it fails if files appeared since,
		// and they are left alone.
		return fmt.Errorf("output %s: %w", o, err)
	}
	if err := dr.RenameDir(ctx, out, o.Dir); err != nil {
		return err
	}
	return o.Store.RemoveAll(ctx, st)
}

// place moves an attempt's file to name, or writes an empty file there.
func (o *Output) place(ctx context.Context, file, name string) error {
	if file == "" {
		return o.write(ctx, name, nil)
	}
	return o.Store.Rename(ctx, file, name)
}

func (o *Output) write(ctx context.Context, name string, b []byte) error {
	w, err := o.Store.Create(ctx, name)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

// Abort removes what the job wrote: its staging area.
func (o *Output) Abort(ctx context.Context) error {
	return o.Store.RemoveAll(ctx, o.Staging())
}

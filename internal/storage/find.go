package storage

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
)

// LocalVolume is the volume of the embedded grid (grid run) and of the
// one-machine cluster (grid up): the local user's own files, which that
// user grants themselves.
const LocalVolume = "local"

// LocalGrants gives tenant the whole file system of this machine, as the
// local user sees it: what an embedded grid does for the user who runs it.
func LocalGrants(tenant string) Grants {
	v := Volume{Name: LocalVolume, URL: "file:///"}
	return Grants{Tenant: tenant, ByName: map[string]Grant{LocalVolume: {Volume: v, Access: ReadWrite}}}
}

// Locate is where dir of the volume is, for people: a directory, or an
// s3:// URL.
func (v Volume) Locate(dir string) string {
	if v.Scheme() == "file" {
		return filepath.Join(v.Root(), filepath.FromSlash(dir))
	}
	return "s3://" + path.Join(v.Bucket(), v.Prefix(), dir)
}

// File is an object of a named volume.
type File struct {
	Volume string
	Object
}

// Finder finds the files that a job's sources name in the volumes granted
// to its tenant, for reading: the I/O behind planning a job
// (jobspec.Inputs). It is not safe for concurrent use.
type Finder struct {
	Ctx    context.Context
	Grants Grants
	Stores *Cache
	// Used collects the volumes that Glob found files in; nil: not kept.
	Used map[string]Volume
}

// Glob lists the files that loc (a source glob, as a job spec writes it)
// names; none is an error.
func (f *Finder) Glob(loc string) ([]File, error) {
	ref, err := Resolve(loc, f.Grants, Read)
	if err != nil {
		return nil, err
	}
	v := f.Grants.ByName[ref.Volume].Volume
	st, err := f.Stores.Store(v)
	if err != nil {
		return nil, err
	}
	objs, err := st.Glob(f.Ctx, ref.Path)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("no file matches %q (in volume %s: %s)", loc, ref.Volume, v.Locate(ref.Path))
	}
	if f.Used != nil {
		f.Used[v.Name] = v
	}
	out := make([]File, len(objs))
	for i, o := range objs {
		out[i] = File{v.Name, o}
	}
	return out, nil
}

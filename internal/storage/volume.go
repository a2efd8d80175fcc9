package storage

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Volume is a named place where data lives: a directory tree or a prefix
// of an S3-compatible bucket. Its credentials stay on the servers: they
// travel to agents over the mutually authenticated control plane, never to
// clients.
type Volume struct {
	Name string `toml:"name" json:"name"`
	// URL is file:///absolute/dir or s3://bucket[/prefix].
	URL string `toml:"url" json:"url"`
	// Endpoint is an S3 server's address, as http(s)://host:port or
	// host:port (https); empty means AWS.
	Endpoint string `toml:"endpoint" json:"endpoint,omitempty"`
	Region   string `toml:"region" json:"region,omitempty"`
	// AccessKey and SecretKey authenticate to the S3 server.
	AccessKey string `toml:"access_key" json:"access_key,omitempty"`
	SecretKey string `toml:"secret_key" json:"secret_key,omitempty"`
}

// Scheme is "file" or "s3".
func (v Volume) Scheme() string {
	s, _, _ := strings.Cut(v.URL, "://")
	return s
}

// Root is a file volume's directory.
func (v Volume) Root() string { return strings.TrimPrefix(v.URL, "file://") }

// Bucket and Prefix are an s3 volume's bucket and key prefix ("" or
// without a trailing slash).
func (v Volume) Bucket() string {
	b, _, _ := strings.Cut(strings.TrimPrefix(v.URL, "s3://"), "/")
	return b
}

// Prefix is an s3 volume's key prefix, without slashes at its ends.
func (v Volume) Prefix() string {
	_, p, _ := strings.Cut(strings.TrimPrefix(v.URL, "s3://"), "/")
	return strings.Trim(p, "/")
}

// Validate says what is wrong with a volume's definition.
func (v Volume) Validate() error {
	if !validName(v.Name) {
		return fmt.Errorf("volume %q: a name is two or more characters: a letter, then letters, digits, '_', '-' or '.'", v.Name)
	}
	switch v.Scheme() {
	case "file":
		root := v.Root()
		if !filepath.IsAbs(root) || filepath.Clean(root) != root {
			return fmt.Errorf("volume %s: url %q must be file:// and an absolute, clean directory, like file:///srv/data", v.Name, v.URL)
		}
	case "s3":
		u, err := url.Parse(v.URL)
		if err != nil || u.Host == "" {
			return fmt.Errorf("volume %s: url %q must be s3://bucket or s3://bucket/prefix", v.Name, v.URL)
		}
		if strings.Contains(v.Prefix(), "//") || slices.Contains(strings.Split(v.Prefix(), "/"), "..") {
			return fmt.Errorf("volume %s: url %q has an empty or '..' element in its prefix", v.Name, v.URL)
		}
	default:
		return fmt.Errorf("volume %s: url %q must start with file:// or s3://", v.Name, v.URL)
	}
	return nil
}

// validName reports whether s can name a volume: a letter, then letters,
// digits, '_', '-' or '.'. Two letters at least, so that "C:" is never
// mistaken for one.
func validName(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// Access is what a tenant may do in a volume.
type Access int

// Accesses, weakest first.
const (
	Read      Access = 1
	ReadWrite Access = 2
)

func (a Access) String() string {
	switch a {
	case Read:
		return "read"
	case ReadWrite:
		return "read-write"
	}
	return fmt.Sprintf("Access(%d)", int(a))
}

// ParseAccess reads "read" or "read-write" (also "r", "rw", "ro").
func ParseAccess(s string) (Access, error) {
	switch s {
	case "read", "r", "ro", "read-only":
		return Read, nil
	case "read-write", "rw", "write":
		return ReadWrite, nil
	}
	return 0, fmt.Errorf("access %q must be \"read\" or \"read-write\"", s)
}

// Grant gives a tenant a volume.
type Grant struct {
	Volume Volume
	Access Access
}

// Grants are the volumes a tenant may use, by name.
type Grants struct {
	Tenant string
	ByName map[string]Grant
}

// names lists the granted volumes for messages.
func (g Grants) names() string {
	if len(g.ByName) == 0 {
		return "none: the operator grants volumes in the coordinator's config"
	}
	var out []string
	for _, n := range slices.Sorted(maps.Keys(g.ByName)) {
		out = append(out, fmt.Sprintf("%s (%s, %s)", n, g.ByName[n].Access, g.ByName[n].Volume.URL))
	}
	return strings.Join(out, ", ")
}

// Ref names a file, a directory or a glob pattern inside a volume.
type Ref struct {
	Volume string
	// Path is slash-separated and relative to the volume's root: clean,
	// never absolute, never "..", "" for the root itself.
	Path string
}

func (r Ref) String() string { return r.Volume + ":" + r.Path }

// IsLocation reports whether s is written as a volume location ("vol:path"
// or a URL) rather than a file path.
func IsLocation(s string) bool {
	name, _, ok := strings.Cut(s, ":")
	return ok && validName(name)
}

// ErrRefused marks a location a tenant may not use.
var ErrRefused = errors.New("refused")

// refusedError is a refusal that names the rule.
type refusedError struct{ msg string }

func (e *refusedError) Error() string        { return e.msg }
func (e *refusedError) Is(target error) bool { return target == ErrRefused }

func refused(format string, args ...any) error {
	return &refusedError{fmt.Sprintf(format, args...)}
}

// Resolve turns loc, as a job spec writes it, into a Ref inside one of the
// tenant's granted volumes with at least the access need:
//
//   - "vol:path": path in volume vol ("vol:" alone is its root);
//   - "s3://bucket/key": in the granted s3 volume whose bucket and prefix
//     hold the key;
//   - "file:///abs" or "/abs": in the granted file volume whose root holds
//     the path (the deepest one).
//
// The path is cleaned first, and a path that climbs above its volume's
// root, holds a NUL byte, or lies in no granted volume is refused with the
// rule it breaks (ErrRefused). Symbolic links are checked when the path is
// used: a Store never follows one out of its volume.
func Resolve(loc string, g Grants, need Access) (Ref, error) {
	if strings.ContainsRune(loc, 0) {
		return Ref{}, refused("%q holds a NUL byte", loc)
	}
	var ref Ref
	switch {
	case strings.HasPrefix(loc, "s3://"):
		r, err := resolveS3(loc, g, need)
		if err != nil {
			return Ref{}, err
		}
		ref = r
	case strings.HasPrefix(loc, "file://"):
		return Resolve(strings.TrimPrefix(loc, "file://"), g, need)
	case filepath.IsAbs(loc):
		r, err := resolveAbs(loc, g, need)
		if err != nil {
			return Ref{}, err
		}
		ref = r
	case IsLocation(loc):
		name, rest, _ := strings.Cut(loc, ":")
		if _, ok := g.ByName[name]; !ok {
			return Ref{}, refused("%s: no volume %q is granted to tenant %s; granted: %s", loc, name, g.Tenant, g.names())
		}
		p, err := inside(loc, name, rest)
		if err != nil {
			return Ref{}, err
		}
		ref = Ref{Volume: name, Path: p}
	default:
		return Ref{}, refused("%s: name a volume (vol:path), an s3:// URL or an absolute path", loc)
	}
	if gr := g.ByName[ref.Volume]; gr.Access < need {
		return Ref{}, refused("%s: volume %s is granted to tenant %s for %s only, and this needs %s", loc, ref.Volume, g.Tenant, gr.Access, need)
	}
	return ref, nil
}

// inside cleans rest, a path relative to volume name's root, and refuses
// it if it climbs out.
func inside(loc, name, rest string) (string, error) {
	p := path.Clean("/" + rest)
	if strings.Contains(rest, "..") {
		// Clean folded ".." away against "/": compare with a clean of the
		// relative path, which keeps the ".." that climb above the root.
		if rel := path.Clean(strings.TrimLeft(rest, "/")); rel == ".." || strings.HasPrefix(rel, "../") {
			return "", refused("%s climbs above the root of volume %s with \"..\"", loc, name)
		}
	}
	return strings.TrimPrefix(p, "/"), nil
}

// deepest picks, of the granted volumes that hold a location (depth
// returns the length of the volume's root or prefix, or -1 if it does not
// hold it), the deepest that grants need, or else the deepest of all (whose
// access Resolve then refuses). Grants add up: a read-only volume inside a
// read-write one does not take the outer one's writes away.
func deepest(g Grants, need Access, depth func(Volume) int) string {
	best, bestLen, weak, weakLen := "", -1, "", -1
	for _, n := range slices.Sorted(maps.Keys(g.ByName)) {
		d := depth(g.ByName[n].Volume)
		switch {
		case d < 0:
		case g.ByName[n].Access >= need && d > bestLen:
			best, bestLen = n, d
		case d > weakLen:
			weak, weakLen = n, d
		}
	}
	if best == "" {
		return weak
	}
	return best
}

func resolveS3(loc string, g Grants, need Access) (Ref, error) {
	rest := strings.TrimPrefix(loc, "s3://")
	bucket, key, _ := strings.Cut(rest, "/")
	best := deepest(g, need, func(v Volume) int {
		if v.Scheme() != "s3" || v.Bucket() != bucket {
			return -1
		}
		prefix := v.Prefix()
		if prefix != "" && key != prefix && !strings.HasPrefix(key, prefix+"/") {
			return -1
		}
		return len(prefix)
	})
	if best == "" {
		return Ref{}, refused("%s: bucket %s holds no volume granted to tenant %s; granted: %s", loc, bucket, g.Tenant, g.names())
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(key, g.ByName[best].Volume.Prefix()), "/")
	p, err := inside(loc, best, rel)
	if err != nil {
		return Ref{}, err
	}
	return Ref{Volume: best, Path: p}, nil
}

func resolveAbs(loc string, g Grants, need Access) (Ref, error) {
	clean := filepath.Clean(loc)
	best := deepest(g, need, func(v Volume) int {
		if v.Scheme() != "file" {
			return -1
		}
		rel, err := filepath.Rel(v.Root(), clean)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return -1
		}
		return len(v.Root())
	})
	if best == "" {
		return Ref{}, refused("%s is in no volume granted to tenant %s; granted: %s: name a volume, as VOLUME:path", loc, g.Tenant, g.names())
	}
	rel, _ := filepath.Rel(g.ByName[best].Volume.Root(), clean)
	if rel == "." {
		rel = ""
	}
	return Ref{Volume: best, Path: filepath.ToSlash(rel)}, nil
}

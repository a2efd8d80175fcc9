package storage_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/storage"
)

func testGrants() storage.Grants {
	return storage.Grants{Tenant: "alice", ByName: map[string]storage.Grant{
		"home":  {Volume: storage.Volume{Name: "home", URL: "file:///srv/alice"}, Access: storage.ReadWrite},
		"deep":  {Volume: storage.Volume{Name: "deep", URL: "file:///srv/alice/shared"}, Access: storage.Read},
		"lake":  {Volume: storage.Volume{Name: "lake", URL: "s3://lake/warehouse"}, Access: storage.Read},
		"lake2": {Volume: storage.Volume{Name: "lake2", URL: "s3://lake"}, Access: storage.ReadWrite},
	}}
}

func TestResolve(t *testing.T) {
	cases := []struct {
		loc  string
		need storage.Access
		want string // Ref, or "refused: <text in the error>"
	}{
		{"home:books/*.txt", storage.Read, "home:books/*.txt"},
		{"home:/books/a.txt", storage.Read, "home:books/a.txt"},
		{"home:", storage.Read, "home:"},
		{"home:a/../b", storage.Read, "home:b"},
		{"home:../bob/x", storage.Read, "refused: climbs above the root of volume home"},
		{"home:a/../../x", storage.Read, "refused: climbs above the root"},
		{"home:*/../../etc/passwd", storage.Read, "refused: climbs above the root"},
		{"bob:data", storage.Read, `refused: no volume "bob" is granted to tenant alice`},
		{"/srv/alice/books/a.txt", storage.Read, "home:books/a.txt"},
		{"/srv/alice/shared/x", storage.Read, "deep:x"},             // the deepest volume holds it
		{"/srv/alice/shared/x", storage.ReadWrite, "home:shared/x"}, // grants add up
		{"s3://lake/warehouse/t", storage.Read, "lake:t"},
		{"/srv/alice/../bob/x", storage.Read, "refused: is in no volume granted to tenant alice"},
		{"/srv/alicex/y", storage.Read, "refused: is in no volume"},
		{"/etc/passwd", storage.Read, "refused: is in no volume"},
		{"file:///srv/alice/b", storage.Read, "home:b"},
		{"s3://lake/warehouse/t/*.csv", storage.Read, "lake:t/*.csv"},
		{"s3://lake/warehouse/t", storage.ReadWrite, "lake2:warehouse/t"}, // lake is read-only; lake2 holds it too, for writing
		{"s3://lake/other/x", storage.Read, "lake2:other/x"},
		{"s3://lake/warehouse/../secrets", storage.Read, "refused: climbs above the root"},
		{"s3://other/x", storage.Read, "refused: bucket other holds no volume granted"},
		{"deep:x", storage.ReadWrite, "refused: granted to tenant alice for read only"},
		{"relative/path", storage.Read, "refused: name a volume"},
		{"home:a\x00b", storage.Read, "refused: NUL"},
	}
	for _, c := range cases {
		ref, err := storage.Resolve(c.loc, testGrants(), c.need)
		if want, ok := strings.CutPrefix(c.want, "refused: "); ok {
			if !errors.Is(err, storage.ErrRefused) || !strings.Contains(err.Error(), want) {
				t.Errorf("Resolve(%q, %s) = %v, %v; want a refusal saying %q", c.loc, c.need, ref, err, want)
			}
			continue
		}
		if err != nil || ref.String() != c.want {
			t.Errorf("Resolve(%q, %s) = %v, %v; want %s", c.loc, c.need, ref, err, c.want)
		}
	}
}

func TestVolumeValidate(t *testing.T) {
	for _, v := range []storage.Volume{
		{Name: "a", URL: "file:///x"},
		{Name: "1a", URL: "file:///x"},
		{Name: "ok", URL: "file://relative"},
		{Name: "ok", URL: "file:///x/../y"},
		{Name: "ok", URL: "http://x"},
		{Name: "ok", URL: "s3://"},
		{Name: "ok", URL: "s3://b/../c"},
	} {
		if err := v.Validate(); err == nil {
			t.Errorf("%+v validated; want an error", v)
		}
	}
	for _, v := range []storage.Volume{
		{Name: "data", URL: "file:///srv/data"},
		{Name: "lake.raw", URL: "s3://lake/raw/"},
		{Name: "b2", URL: "s3://bucket"},
	} {
		if err := v.Validate(); err != nil {
			t.Errorf("%+v: %v", v, err)
		}
	}
}

// FuzzResolve checks Resolve's invariants on any location: what it accepts
// is a clean path inside a granted volume with enough access, and an
// absolute path lands where its cleaned form says.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"home:books/*.txt", "/srv/alice/x/../y", "s3://lake/warehouse/a", "home:../x", "/etc/passwd", "deep:", "s3://lake//x", "home:a/./b//c", "file:///srv/alice/shared/z"} {
		f.Add(s, true)
	}
	g := testGrants()
	f.Fuzz(func(t *testing.T, loc string, write bool) {
		need := storage.Read
		if write {
			need = storage.ReadWrite
		}
		ref, err := storage.Resolve(loc, g, need)
		if err != nil {
			return
		}
		gr, ok := g.ByName[ref.Volume]
		if !ok || gr.Access < need {
			t.Fatalf("Resolve(%q) = %v: not granted with %s", loc, ref, need)
		}
		if ref.Path != "" && !storage.ValidPath(ref.Path) {
			t.Fatalf("Resolve(%q) = %v: not a clean relative path", loc, ref)
		}
		if strings.HasPrefix(loc, "/") && gr.Volume.Scheme() == "file" {
			got := filepath.Join(gr.Volume.Root(), filepath.FromSlash(ref.Path))
			if got != filepath.Clean(loc) {
				t.Fatalf("Resolve(%q) = %v, which is %s", loc, ref, got)
			}
		}
	})
}

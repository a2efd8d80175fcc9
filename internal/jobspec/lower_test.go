package jobspec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/storage"
)

// TestLowerRecomputesUncachedDatasets: a dataset read twice without
// cache is computed twice; a chain of such datasets doubles at every
// link, and past a bound the spec is refused with the fix; caching one
// link keeps the plan small.
func TestLowerRecomputesUncachedDatasets(t *testing.T) {
	spec := func(links int, cached int) *Spec {
		t.Helper()
		var b strings.Builder
		fmt.Fprintf(&b, "[source]\ndataset = \"d%d\"\n[sink]\ntext = \"-\"\n[datasets.d0]\nsource = { inline = [\"a\", \"b\"] }\n", links)
		for i := 1; i <= links; i++ {
			fmt.Fprintf(&b, "[datasets.d%d]\nsource = { dataset = \"d%d\" }\nsteps = [{ union = \"d%d\" }]\n", i, i-1, i-1)
			if i == cached {
				b.WriteString("cache = true\n")
			}
		}
		s, err := Parse([]byte(b.String()), "job.toml", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	plan, err := spec(2, 0).Explain(2)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(plan, "source ("); n != 4 {
		t.Errorf("two links, no cache: the inline source is read %d times, want 4:\n%s", n, plan)
	}
	if _, err := spec(14, 0).Explain(2); err == nil || !strings.Contains(err.Error(), "add cache = true") {
		t.Errorf("14 uncached links: %v, want the advice to cache", err)
	}
	for _, links := range []int{14, 40} {
		// Every link cached: each is computed once.
		var b strings.Builder
		fmt.Fprintf(&b, "[source]\ndataset = \"d%d\"\n[sink]\ntext = \"-\"\n[datasets.d0]\nsource = { inline = [\"a\"] }\ncache = true\n", links)
		for i := 1; i <= links; i++ {
			fmt.Fprintf(&b, "[datasets.d%d]\nsource = { dataset = \"d%d\" }\nsteps = [{ union = \"d%d\" }]\ncache = true\n", i, i-1, i-1)
		}
		s, err := Parse([]byte(b.String()), "job.toml", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := s.Explain(2)
		if err != nil {
			t.Fatalf("%d cached links: %v", links, err)
		}
		if n := strings.Count(plan, "source ("); n != 1 {
			t.Errorf("%d cached links: the source is read %d times, want once", links, n)
		}
	}
}

func TestSplitInputs(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), make([]byte, 25), 0o644)
	os.WriteFile(filepath.Join(dir, "b.txt"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "c.txt"), make([]byte, 10), 0o644)
	st := &storage.Cache{}
	defer st.Close()
	vol := storage.Volume{Name: "data", URL: "file://" + dir}
	in := &storage.Finder{Ctx: context.Background(), Stores: st, Used: map[string]storage.Volume{},
		Grants: storage.Grants{Tenant: "t", ByName: map[string]storage.Grant{"data": {Volume: vol, Access: storage.Read}}}}
	for _, globs := range [][]string{
		{filepath.Join(dir, "*.txt"), filepath.Join(dir, "a.txt")},
		{"data:*.txt", "data:a.txt"},
	} {
		splits, err := splitInputs(Source{Globs: globs}, 10, 2, in, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range splits {
			got = append(got, s.Volume+":"+s.Path+":"+itoa(s.Offset)+"+"+itoa(s.Length))
		}
		if strings.Join(got, " ") != "data:a.txt:0+10 data:a.txt:10+10 data:a.txt:20+5 data:c.txt:0+10" {
			t.Fatalf("%q: splits %v", globs, got)
		}
	}
	if in.Used["data"] != vol {
		t.Errorf("the job's volumes are %v; want data", in.Used)
	}
	for glob, want := range map[string]string{
		filepath.Join(dir, "none*"): "no file matches",
		"/etc/passwd":               "is in no volume granted to tenant t",
		"data:../x":                 "climbs above the root of volume data",
		"other:x":                   `no volume "other" is granted to tenant t`,
	} {
		if _, err := splitInputs(Source{Globs: []string{glob}}, 10, 2, in, 0); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an error saying %q", glob, err, want)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

package grid

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/executor"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
)

// TestPlanSpecRecomputesUncachedDatasets: a dataset read twice without
// cache is computed twice; a chain of such datasets doubles at every
// link, and past a bound the spec is refused with the fix; caching one
// link keeps the plan small.
func TestPlanSpecRecomputesUncachedDatasets(t *testing.T) {
	spec := func(links int, cached int) *jobspec.Spec {
		t.Helper()
		var b strings.Builder
		fmt.Fprintf(&b, "[source]\ndataset = \"d%d\"\n[sink]\ntext = \"-\"\n[datasets.d0]\nsource = { inline = [\"a\", \"b\"] }\n", links)
		for i := 1; i <= links; i++ {
			fmt.Fprintf(&b, "[datasets.d%d]\nsource = { dataset = \"d%d\" }\nsteps = [{ union = \"d%d\" }]\n", i, i-1, i-1)
			if i == cached {
				b.WriteString("cache = true\n")
			}
		}
		s, err := jobspec.Parse([]byte(b.String()), "job.toml", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	plan, err := Explain(spec(2, 0), 2)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(plan, "source ("); n != 4 {
		t.Errorf("two links, no cache: the inline source is read %d times, want 4:\n%s", n, plan)
	}
	if _, err := Explain(spec(14, 0), 2); err == nil || !strings.Contains(err.Error(), "add cache = true") {
		t.Errorf("14 uncached links: %v, want the advice to cache", err)
	}
	for _, links := range []int{14, 40} {
		// Every link cached: each is computed once.
		var b strings.Builder
		fmt.Fprintf(&b, "[source]\ndataset = \"d%d\"\n[sink]\ntext = \"-\"\n[datasets.d0]\nsource = { inline = [\"a\"] }\ncache = true\n", links)
		for i := 1; i <= links; i++ {
			fmt.Fprintf(&b, "[datasets.d%d]\nsource = { dataset = \"d%d\" }\nsteps = [{ union = \"d%d\" }]\ncache = true\n", i, i-1, i-1)
		}
		s, err := jobspec.Parse([]byte(b.String()), "job.toml", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := Explain(s, 2)
		if err != nil {
			t.Fatalf("%d cached links: %v", links, err)
		}
		if n := strings.Count(plan, "source ("); n != 1 {
			t.Errorf("%d cached links: the source is read %d times, want once", links, n)
		}
	}
}

// TestInspectorRemembersManifests: a module described once is not run
// again under the same memory limit; another limit runs it again.
func TestInspectorRemembersManifests(t *testing.T) {
	wasm, err := os.ReadFile("../examples/wordcount/guest/c/guest.wasm")
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in := &inspector{argv: []string{exe}, cfg: executor.Config{CacheDir: testCacheDir}, dir: t.TempDir(), loadTimeout: 10 * time.Second, compileTimeout: time.Minute, initTimeout: 15 * time.Second, logger: slog.New(slog.DiscardHandler)}
	blob, err := storeBytes(in.dir, "wc", wasm)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := in.describe(ctx, blob, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	// Without an executor to run, only a remembered manifest can answer.
	in.argv = []string{filepath.Join(t.TempDir(), "no-such-executor")}
	again, err := in.describe(ctx, blob, 64<<20)
	if err != nil || again != first {
		t.Fatalf("second describe: %v, %v (want the first manifest)", again, err)
	}
	if _, err := in.describe(ctx, blob, 32<<20); err == nil {
		t.Fatal("another memory limit was answered without running the module")
	}
}

package grid

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/executor"
)

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

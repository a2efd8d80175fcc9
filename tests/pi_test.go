package tests

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/wasmgrid/wasmgrid/examples/pi"
	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

// TestPi estimates pi from a generate source: the grid's line must equal
// the native count of the same throws, and the estimate be near pi.
func TestPi(t *testing.T) {
	const throws = 200_000
	var hits uint64
	for i := range uint64(throws) {
		if x, y := pi.Point(i); x*x+y*y < 1 {
			hits++
		}
	}
	want := fmt.Sprintf("Pi is roughly %.6f (%d of %d throws inside)\n", pi.Estimate(hits, throws), hits, throws)
	if est := pi.Estimate(hits, throws); math.Abs(est-math.Pi) > 0.02 {
		t.Fatalf("native estimate %f is far from pi: the throws are not uniform", est)
	}
	ctx := context.Background()
	job, err := sdk.LoadJob(ctx, repoPath("examples/pi/job.toml"), map[string]string{"throws": fmt.Sprint(throws)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := local.Start(local.Config{Agents: 1, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var got bytes.Buffer
	sum, err := l.Run(ctx, job, &got)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != want {
		t.Fatalf("got %q, want %q", got.String(), want)
	}
	if sum.RecordsIn != throws {
		t.Errorf("%d records in, want %d", sum.RecordsIn, throws)
	}
}

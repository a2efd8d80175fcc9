package main

import (
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/sdk"
)

// TestSameJobAsSpec: the job built with the SDK plans as job.toml does,
// as a broadcast join and as a shuffle join.
func TestSameJobAsSpec(t *testing.T) {
	for _, threshold := range []string{"10MiB", "0"} {
		conf := map[string]string{"join.broadcast_threshold": threshold}
		spec, err := jobspec.Load("../../job.toml", nil, conf)
		if err != nil {
			t.Fatal(err)
		}
		want, err := spec.Explain(4)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Job(sdk.GoGuest("../../guest/go"), "../../data/orders.csv", "../../data/customers.csv").Conf("join.broadcast_threshold", threshold).Explain(4)
		if err != nil || got != want {
			t.Errorf("threshold %s: the SDK's plan (%v):\n%s\njob.toml's:\n%s", threshold, err, got, want)
		}
	}
}

package main

import (
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/sdk"
)

// TestSameJobAsSpec: the job built with the SDK plans as job.toml does,
// cached or not.
func TestSameJobAsSpec(t *testing.T) {
	for _, cache := range []string{"true", "false"} {
		spec, err := jobspec.Load("../../job.toml", map[string]string{"cache": cache}, map[string]string{"partitions": "3"})
		if err != nil {
			t.Fatal(err)
		}
		want, err := spec.Explain(4)
		if err != nil {
			t.Fatal(err)
		}
		job := Job(sdk.GoGuest("../../guest/go"), "../../data/edges.txt", 10, cache == "true", sdk.Stdout()).Conf("partitions", "3")
		got, err := job.Explain(4)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			text, _ := job.Spec()
			t.Errorf("cache %s: the SDK's plan:\n%s\njob.toml's:\n%s\nthe SDK's spec:\n%s", cache, got, want, text)
		}
	}
}

package main

import (
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/sdk"
)

// TestSameJobAsSpec: the job built with the SDK plans as job.toml does.
func TestSameJobAsSpec(t *testing.T) {
	spec, err := jobspec.Load("../../job.toml", map[string]string{"throws": "5000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := spec.Explain(4)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Job(sdk.GoGuest("../../guest/go"), 5000).Explain(4)
	if err != nil || got != want {
		t.Errorf("the SDK's plan (%v):\n%s\njob.toml's:\n%s", err, got, want)
	}
}

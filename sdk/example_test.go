package sdk_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/wasmgrid/wasmgrid/grid"
	"github.com/wasmgrid/wasmgrid/sdk"
)

// Run the word-count example on an embedded grid and read its result.
func Example() {
	ctx := context.Background()
	job, err := sdk.LoadJob(ctx, "../examples/wordcount/job.toml", nil, map[string]string{"partitions": "2"})
	if err != nil {
		log.Fatal(err)
	}
	local, err := sdk.StartLocal(sdk.LocalConfig{Slots: 2, CacheDir: "off"})
	if err != nil {
		log.Fatal(err)
	}
	defer local.Close()

	var out bytes.Buffer
	sum, err := local.Run(ctx, job, &out)
	if err != nil {
		log.Fatal(err)
	}
	for line := range strings.Lines(out.String()) {
		if w, _, _ := strings.Cut(line, "\t"); w == "tyger" || w == "jabberwock" {
			fmt.Print(line)
		}
	}
	fmt.Println(sum.RecordsOut, "distinct words in", sum.Tasks, "tasks")
	// Output:
	// jabberwock	3
	// tyger	4
	// 153 distinct words in 4 tasks
}

// ExampleConnect runs the same job on a running grid (grid up, or a
// cluster), with the address and token the CLI uses.
func ExampleConnect() {
	ctx := context.Background()
	job, err := sdk.LoadJob(ctx, "../examples/wordcount/job.toml", nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	remote := sdk.Connect(os.Getenv("GRID_ADDR"), os.Getenv("GRID_TOKEN"))
	info, err := remote.Run(ctx, job, os.Stdout)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "%s %s\n", info.ID, info.State)
}

// ExampleRemote_Watch follows a submitted job's stages, and why its
// waiting tasks wait.
func ExampleRemote_Watch() {
	ctx := context.Background()
	r := sdk.Connect(os.Getenv("GRID_ADDR"), os.Getenv("GRID_TOKEN"))
	job, err := sdk.LoadJob(ctx, "../examples/wordcount/job.toml", map[string]string{"output": "/tmp/counts"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	id, err := r.Submit(ctx, job, "")
	if err != nil {
		log.Fatal(err)
	}
	_, err = r.Watch(ctx, id, func(info grid.JobInfo) {
		for _, s := range info.Stages {
			fmt.Printf("stage %d: %d/%d done %s\n", s.ID, s.Done, s.Tasks, s.Why)
		}
	})
	if err != nil {
		log.Fatal(err)
	}
}

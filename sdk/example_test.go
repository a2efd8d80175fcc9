package sdk_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"strings"

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

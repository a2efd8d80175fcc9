package local_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

// TestResultOfInlineAndFileParts: a printed result whose small parts
// travel in their tasks' statuses and whose large part is a file comes out
// whole and in partition order.
func TestResultOfInlineAndFileParts(t *testing.T) {
	var large strings.Builder
	var want bytes.Buffer
	want.WriteString("a\t1\n")
	for i := range 5000 { // about 40 KB of output: past its share of the inline bound
		fmt.Fprintf(&large, "x%d ", i)
		fmt.Fprintf(&want, "x%d\t1\n", i)
	}
	want.WriteString("b\t1\n")
	job := sdk.NewJob("parts")
	wc := job.Module("wc", sdk.GoGuest("../../examples/wordcount/guest/go"))
	job.Parallelize([]string{"a", large.String(), "b"}, 3).FlatMap(wc.Func("split")).Write(sdk.Stdout())
	var out bytes.Buffer
	sum, err := local.Run(context.Background(), job, &out)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Partitions != 3 {
		t.Fatalf("%d result partitions, want 3", sum.Partitions)
	}
	if out.String() != want.String() {
		t.Errorf("result of %d bytes differs from the %d expected; first line %q", out.Len(), want.Len(), strings.SplitN(out.String(), "\n", 2)[0])
	}
}

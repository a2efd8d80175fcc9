package sdk_test

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

func wordCountBuilder(out sdk.Sink) *sdk.JobBuilder {
	job := sdk.NewJob("wordcount")
	wc := job.Module("wc", sdk.GoGuest("../examples/wordcount/guest/go"))
	lines := job.TextFile("../examples/wordcount/data/*.txt")
	lines.FlatMap(wc.Func("split")).ReduceByKey(wc.Func("sum")).Write(out)
	return job
}

// TestBuilderRunsLikeTheSpec: a job built in Go gives the same result as
// the TOML spec of the same job.
func TestBuilderRunsLikeTheSpec(t *testing.T) {
	ctx := context.Background()
	l, err := local.Start(local.Config{Agents: 1, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	built, err := wordCountBuilder(sdk.Stdout()).Conf("partitions", "3").Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got, want bytes.Buffer
	if _, err := l.Run(ctx, built, &got); err != nil {
		t.Fatal(err)
	}
	spec, err := sdk.LoadJob(ctx, "../examples/wordcount/job.toml", nil, map[string]string{"partitions": "3"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Run(ctx, spec, &want); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() || got.Len() == 0 {
		t.Fatalf("built job printed %d bytes, the spec %d; they differ", got.Len(), want.Len())
	}
}

func TestBuilderErrors(t *testing.T) {
	job := sdk.NewJob("nothing")
	job.TextFile("x")
	if _, err := job.Spec(); err == nil || !strings.Contains(err.Error(), "has no result") {
		t.Errorf("a job without Write: %v", err)
	}
	job = sdk.NewJob("twice")
	d := job.TextFile("x")
	d.Write(sdk.Stdout())
	d.Write(sdk.Stdout())
	if _, err := job.Spec(); err == nil || !strings.Contains(err.Error(), "Write was called twice") {
		t.Errorf("two results: %v", err)
	}
	job = sdk.NewJob("bad")
	m := job.Module("m", sdk.WasmFile("m.wasm"))
	job.TextFile("../examples/wordcount/data/*.txt").Map(m.Func("f")).Write(sdk.Text("out"))
	job.Conf("partitons", "3")
	if _, err := job.Build(context.Background()); err == nil || !strings.Contains(err.Error(), "partitons") {
		t.Errorf("a misspelt setting: %v", err)
	}
}

// TestBuilderJoin: the join example built in Go prints what its spec does.
func TestBuilderJoin(t *testing.T) {
	ctx := context.Background()
	job := sdk.NewJob("join")
	j := job.Module("j", sdk.GoGuest("../examples/join/guest/go"))
	orders := job.CSVFile("../examples/join/data/orders.csv").Map(j.Func("order_by_customer"))
	customers := job.CSVFile("../examples/join/data/customers.csv").Map(j.Func("customer_country"))
	orders.Join(customers).Map(j.Func("revenue")).ReduceByKey(j.Func("sum")).Map(j.Func("format")).Write(sdk.Stdout())
	built, err := job.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := sdk.LoadJob(ctx, "../examples/join/job.toml", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := local.Start(local.Config{Agents: 1, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var got, want bytes.Buffer
	if _, err := l.Run(ctx, built, &got); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Run(ctx, spec, &want); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() || got.Len() == 0 {
		t.Fatalf("built join printed %q, the spec %q", got.String(), want.String())
	}
}

// TestParallelizeAndJSON counts words of inline values, and reads JSON
// lines, refusing a line that is not JSON.
func TestParallelizeAndJSON(t *testing.T) {
	ctx := context.Background()
	l, err := local.Start(local.Config{Agents: 1, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	job := sdk.NewJob("inline")
	wc := job.Module("wc", sdk.GoGuest("../examples/wordcount/guest/go"))
	job.Parallelize([]string{"to be or", "not to be"}, 2).FlatMap(wc.Func("split")).ReduceByKey(wc.Func("sum")).SortByKey(1).Write(sdk.Stdout())
	var out bytes.Buffer
	if err := job.Run(ctx, l, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "be\t2\nnot\t1\nor\t1\nto\t2\n" {
		t.Errorf("word count of inline values: %q", out.String())
	}
	// Values travel in the spec as they are: line breaks, empty ones.
	values := []string{"a\nb", "", "ü\t\"q\"", "z"}
	recs, err := sdk.NewJob("values").Parallelize(values, 3).Collect(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, string(r.Value))
	}
	if !slices.Equal(got, values) {
		t.Errorf("collected %q, want %q", got, values)
	}
	broken := sdk.NewJob("broken")
	broken.Parallelize([]string{"a\xffb"}, 0).Write(sdk.Stdout())
	if _, err := broken.Spec(); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Errorf("a value that is not UTF-8: %v", err)
	}

	dir := t.TempDir()
	good := dir + "/good.jsonl"
	os.WriteFile(good, []byte("{\"a\": 1}\n\n[1, 2]\n\"x\"\n"), 0o644)
	job = sdk.NewJob("json")
	job.JSONFile(good).Repartition(1).Write(sdk.Stdout())
	out.Reset()
	if err := job.Run(ctx, l, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	slices.Sort(lines)
	if strings.Join(lines, "|") != "\"x\"|[1, 2]|{\"a\": 1}" {
		t.Errorf("json lines: %q", out.String())
	}
	bad := dir + "/bad.jsonl"
	os.WriteFile(bad, []byte("{\"a\": 1}\n{oops\n"), 0o644)
	job = sdk.NewJob("badjson")
	job.JSONFile(bad).Repartition(1).Write(sdk.Stdout())
	if err := job.Run(ctx, l, &out); err == nil || !strings.Contains(err.Error(), "not valid JSON") || !strings.Contains(err.Error(), "bad.jsonl") {
		t.Errorf("a line that is not JSON: %v", err)
	}
}

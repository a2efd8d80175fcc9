package sdk_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

// Run the word-count example on an embedded grid (package sdk/local) and
// read its result.
func Example() {
	ctx := context.Background()
	job, err := sdk.LoadJob(ctx, "../examples/wordcount/job.toml", nil, map[string]string{"partitions": "2"})
	if err != nil {
		log.Fatal(err)
	}
	grid, err := local.Start(local.Config{Slots: 2, CacheDir: "off"})
	if err != nil {
		log.Fatal(err)
	}
	defer grid.Close()

	var out bytes.Buffer
	sum, err := grid.Run(ctx, job, &out)
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
// cluster), with the address, token and certificate authority the CLI
// uses (GRID_ADDR, GRID_TOKEN, GRID_CA: ". TENANT.env" sets them).
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
	_, err = r.Watch(ctx, id, func(info api.JobInfo) {
		for _, s := range info.Stages {
			fmt.Printf("stage %d: %d/%d done", s.ID, s.Done, s.Tasks)
			if s.Reason != nil {
				fmt.Printf(" (%s: %s)", s.Reason.Code, s.Reason.Message)
			}
			fmt.Println()
		}
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Build the word count in Go instead of TOML, and see its plan: the
// source's narrow step fused into the map stage, a shuffle with map-side
// combine, and the reduce.
func ExampleNewJob() {
	job := sdk.NewJob("wordcount")
	wc := job.Module("wc", sdk.GoGuest("../examples/wordcount/guest/go"))
	lines := job.TextFile("../examples/wordcount/data/*.txt")
	counts := lines.FlatMap(wc.Func("split")).ReduceByKey(wc.Func("sum"))
	counts.Write(sdk.Stdout())
	plan, err := job.Explain(2)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(plan)
	// Output:
	// stage 1 (2 tasks): shuffle 0 → reduce wc.sum → result
	// └─ stage 0 (2 tasks): source (2 splits) → flat_map wc.split → shuffle 0 (2 partitions, combine wc.sum)
}

// Sort the word counts, largest first, and keep the top 10: SortByKey
// samples the keys for balanced range partitions, Take cuts the result.
func ExampleDataset_SortByKey() {
	job := sdk.NewJob("topwords")
	tw := job.Module("tw", sdk.GoGuest("../examples/topwords/guest/go"))
	counts := job.TextFile("../examples/wordcount/data/*.txt").FlatMap(tw.Func("split")).ReduceByKey(tw.Func("sum"))
	counts.Map(tw.Func("by_count")).SortByKey(2).Map(tw.Func("format")).Take(10, sdk.Stdout())
	plan, err := job.Explain(2)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(plan)
	// Output:
	// stage 3 (2 tasks): shuffle 2 → map tw.format → result
	// └─ stage 2 (2 tasks): shuffle 0 → reduce tw.sum → map tw.by_count → shuffle 2 (2 partitions, by key range)
	//    ├─ stage 0 (2 tasks): source (2 splits) → flat_map tw.split → shuffle 0 (2 partitions, combine tw.sum)
	//    └─ stage 1 (2 tasks): shuffle 0 → reduce tw.sum → map tw.by_count → sample 60 keys for the bounds of shuffle 2
	//       └─ stage 0 (above)
}

// The TOML spec a Go-built job stands for.
func ExampleJobBuilder_Spec() {
	job := sdk.NewJob("sorted")
	job.RecordFile("/data/tera/*", 100, 10).SortByKey(8).Write(sdk.Records("/data/sorted"))
	text, err := job.Spec()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(text)
	// Output:
	// name = "sorted"
	//
	// [source]
	// records = "/data/tera/*"
	// record_size = 100
	// key_size = 10
	//
	// [[steps]]
	// sort_by_key = { partitions = 8 }
	//
	// [sink]
	// records = "/data/sorted"
}

// A job on a cluster reads and writes the volumes its tenant was granted
// (docs/storage.md): here a word count from an S3 bucket into a directory
// of volume "shared". The locations go to the grid as they are; it
// resolves them against the tenant's volumes, and refuses any other.
func ExampleJobBuilder_TextFile_volumes() {
	job := sdk.NewJob("counts")
	wc := job.Module("wc", sdk.GoGuest("../examples/wordcount/guest/go"))
	job.TextFile("s3://lake/books/*.txt").
		FlatMap(wc.Func("split")).
		ReduceByKey(wc.Func("sum")).
		Write(sdk.Text("shared:counts"))
	text, err := job.Spec()
	if err != nil {
		log.Fatal(err)
	}
	_, source, _ := strings.Cut(text, "[source]\n")
	source, _, _ = strings.Cut(source, "\n")
	_, sink, _ := strings.Cut(text, "[sink]\n")
	fmt.Println(source)
	fmt.Print(sink)
	// Output:
	// text = "s3://lake/books/*.txt"
	// text = "shared:counts"
}

// Cache a dataset that several others read: PageRank's links are
// computed once and kept on the agents. The ranks are partitioned by page
// as the links are, so each iteration's join is a step of the stage that
// computes the ranks, reading its partition of the cache: one shuffle per
// iteration, as in Spark. The plan shows the cache and each reader of it.
func ExampleDataset_Cache() {
	job := sdk.NewJob("pagerank").Conf("partitions", "2")
	pr := job.Module("pr", sdk.GoGuest("../examples/pagerank/guest/go"))
	links := job.TextFile("../examples/pagerank/data/edges.txt").
		Map(pr.Func("edge")).
		GroupByKey(0).
		Cache()
	ranks := links.MapValues(pr.Func("first_rank"))
	for range 2 {
		ranks = ranks.Join(links).
			FlatMap(pr.Func("contribs")).
			ReduceByKey(pr.Func("sum")).
			MapValues(pr.Func("damp"))
	}
	ranks.Write(sdk.Stdout())
	plan, err := job.Explain(2)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(plan)
	// Output:
	// stage 4 (2 tasks): shuffle 3 → reduce pr.sum → map_values pr.damp → result
	// └─ stage 3 (2 tasks): shuffle 2 → reduce pr.sum → map_values pr.damp → join cache 1 → flat_map pr.contribs → shuffle 3 (2 partitions, combine pr.sum)
	//    ├─ stage 2 (2 tasks): cache 1 → map_values pr.first_rank → join cache 1 → flat_map pr.contribs → shuffle 2 (2 partitions, combine pr.sum)
	//    │  └─ stage 1 (2 tasks): shuffle 0 → group values → cache 1 (2 partitions, by key)
	//    │     └─ stage 0 (1 task): source (1 split) → map pr.edge → shuffle 0 (2 partitions)
	//    └─ stage 1 (above)
}

// Actions run the job that computes a dataset: Count counts its records
// where they are, Collect brings them back (for results that fit in
// memory).
func ExampleDataset_Collect() {
	ctx := context.Background()
	grid, err := local.Start(local.Config{Slots: 2, CacheDir: "off"})
	if err != nil {
		log.Fatal(err)
	}
	defer grid.Close()
	job := sdk.NewJob("actions").Conf("partitions", "2")
	wc := job.Module("wc", sdk.GoGuest("../examples/wordcount/guest/go"))
	words := job.TextFile("../examples/wordcount/data/*.txt").FlatMap(wc.Func("split"))
	n, err := words.Count(ctx, grid)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, "words")
	counts, err := words.ReduceByKey(wc.Func("sum")).Sample(0.05, 3).Collect(ctx, grid)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(counts), "counts sampled, the first:", string(counts[0].Key), string(counts[0].Value))
	// Output:
	// 309 words
	// 3 counts sampled, the first: bandersnatch 1
}

// Join orders with customers by customer id. The customers are small, so
// the join is a broadcast join: every orders task reads them whole and
// joins where it reads, and the orders are not shuffled. With
// join.broadcast_threshold at 0, both sides are shuffled and merged.
func ExampleDataset_Join() {
	for _, threshold := range []string{"10MiB", "0"} {
		job := sdk.NewJob("join").Conf("partitions", "2").Conf("join.broadcast_threshold", threshold)
		j := job.Module("j", sdk.GoGuest("../examples/join/guest/go"))
		customers := job.CSVFile("../examples/join/data/customers.csv").Map(j.Func("customer_country"))
		orders := job.CSVFile("../examples/join/data/orders.csv").Map(j.Func("order_by_customer"))
		orders.Join(customers).Map(j.Func("revenue")).ReduceByKey(j.Func("sum")).Write(sdk.Stdout())
		plan, err := job.Explain(2)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(plan)
	}
	// Output:
	// stage 2 (2 tasks): shuffle 1 → reduce j.sum → result
	// └─ stage 1 (1 task): source (1 split) → map j.order_by_customer → join broadcast 0 → map j.revenue → shuffle 1 (2 partitions, combine j.sum)
	//    └─ stage 0 (1 task): source (1 split) → map j.customer_country → broadcast 0 (to every task)
	// stage 3 (2 tasks): shuffle 2 → reduce j.sum → result
	// └─ stage 2 (2 tasks): shuffle 0 join shuffle 1 → map j.revenue → shuffle 2 (2 partitions, combine j.sum)
	//    ├─ stage 0 (1 task): source (1 split) → map j.order_by_customer → shuffle 0 (2 partitions)
	//    └─ stage 1 (1 task): source (1 split) → map j.customer_country → shuffle 1 (2 partitions)
}

// Operators that need no guest function: grouping, counting, distinct
// records, repartitioning, sampling, a union. Each shuffle shows in the
// plan; sample and union fuse into the stages they follow.
func ExampleDataset_GroupByKey() {
	job := sdk.NewJob("builtins").Conf("partitions", "3")
	a := job.Parallelize([]string{"x", "y", "x"}, 1)
	b := job.Parallelize([]string{"y", "z"}, 1)
	a.Union(b).Sample(0.5, 1).PartitionBy(2).Distinct(0).CountByKey(0).GroupByKey(2).Write(sdk.Stdout())
	plan, err := job.Explain(2)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(plan)
	// Output:
	// stage 5 (2 tasks): shuffle 4 → group values → result
	// └─ stage 4 (3 tasks): shuffle 3 → count → shuffle 4 (2 partitions)
	//    └─ stage 3 (3 tasks): shuffle 2 → distinct → shuffle 3 (3 partitions, combine count)
	//       └─ stage 2 (2 tasks): shuffle 0 → shuffle 2 (3 partitions, combine distinct)
	//          ├─ stage 0 (1 task): source (1 split) → sample 0.5 (seed 1) → shuffle 0 (2 partitions)
	//          └─ stage 1 (1 task): source (1 split) → sample 0.5 (seed 1) → shuffle 0 (2 partitions)
}

// Aggregating and grouping two datasets: key_by and map_values re-key and
// rewrite records around a guest map function, aggregate_by_key folds
// each key's values with a create and a merge function (merged on the map
// side first), cogroup lists both sides' values per key, and
// map_partitions sees each partition whole.
func ExampleDataset_AggregateByKey() {
	job := sdk.NewJob("aggregates").Conf("partitions", "2")
	g := job.Module("g", sdk.GoGuest("../tests/guests/groups"))
	left := job.Parallelize([]string{"a1", "b2", "a3"}, 1).KeyBy(g.Func("lastbyte")).AggregateByKey(g.Func("one"), g.Func("sum"))
	right := job.Parallelize([]string{"x1", "y4"}, 1).KeyBy(g.Func("lastbyte")).MapValues(g.Func("valhex"))
	left.Cogroup(right).MapPartitions(g.Func("partition")).Write(sdk.Stdout())
	plan, err := job.Explain(2)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(plan)
	// Output:
	// stage 3 (2 tasks): shuffle 1 cogroup shuffle 2 → map_partitions g.partition → result
	// ├─ stage 1 (2 tasks): shuffle 0 → reduce g.sum → shuffle 1 (2 partitions)
	// │  └─ stage 0 (1 task): source (1 split) → key_by g.lastbyte → map_values g.one → shuffle 0 (2 partitions, combine g.sum)
	// └─ stage 2 (1 task): source (1 split) → key_by g.lastbyte → map_values g.valhex → shuffle 2 (2 partitions)
}

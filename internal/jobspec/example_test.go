package jobspec_test

import (
	"fmt"

	"github.com/wasmgrid/wasmgrid/internal/jobspec"
)

func ExampleParse() {
	spec := []byte(`
[params]
input = "${job_dir}/data/*.txt"
output = "-"

[modules.wc]
go = "guest/go"

[source]
text = "${input}"

[[steps]]
flat_map = "wc.split"
[[steps]]
reduce_by_key = "wc.sum"

[sink]
text = "${output}"

[conf]
partitions = 4
`)
	s, err := jobspec.Parse(spec, "/jobs/wordcount.toml", map[string]string{"output": "/tmp/counts"}, map[string]string{"task.timeout": "90s"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Name, s.Source.Globs, s.Modules[0].GoDir)
	for _, st := range s.Steps {
		fmt.Printf("line %d: %s %s.%s\n", st.Line, st.Op, st.Module, st.Function)
	}
	fmt.Println(s.Sink.Kind, s.Sink.Path, s.Conf.Partitions, s.Conf.TaskTimeout, s.Conf.SplitSize)

	_, err = jobspec.Parse(spec, "wordcount.toml", map[string]string{"outptu": "/tmp/counts"}, nil)
	fmt.Println(err)
	// Output:
	// wordcount [/jobs/data/*.txt] /jobs/guest/go
	// line 13: flat_map wc.split
	// line 15: reduce_by_key wc.sum
	// text /tmp/counts 4 1m30s 0B
	// --param outptu=/tmp/counts is not used by wordcount.toml; its parameters are: input, output (did you mean "output"?)
}

func ExampleParse_error() {
	spec := []byte(`[modules.wc]
path = "wc.wasm"
[source]
text = "in/*.txt"
[[steps]]
flatmap = "wc.split"
[sink]
text = "-"
`)
	_, err := jobspec.Parse(spec, "job.toml", nil, nil)
	fmt.Println(err)
	// Output:
	// job.toml:6: unknown operator "flatmap"; operators are map, flat_map, filter, map_values, key_by, map_partitions, sample, reduce_by_key, aggregate_by_key, sort_by_key, group_by_key, distinct, count_by_key, coalesce, join, left_outer_join, cogroup, repartition, partition_by, union (did you mean "flat_map"?)
}

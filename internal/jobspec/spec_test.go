package jobspec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/planner"
)

// baseSpec is a valid spec; error cases edit one line of it, so the line
// numbers in their expected messages refer to this listing.
const baseSpec = `name = "wc"

[params]
input = "/data/*.txt"
output = "-"

[modules.wc]
path = "wc.wasm"

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
`

// edit replaces old, which must occur in baseSpec, with new.
func edit(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(baseSpec, old) {
		t.Fatalf("baseSpec has no %q", old)
	}
	return strings.Replace(baseSpec, old, new, 1)
}

func TestParseValid(t *testing.T) {
	const file = "/jobs/wc/job.toml"
	tests := []struct {
		name   string
		spec   string
		params map[string]string
		conf   map[string]string
		check  func(t *testing.T, s *Spec)
	}{
		{
			name: "base",
			spec: baseSpec,
			check: func(t *testing.T, s *Spec) {
				want := &Spec{
					Name:    "wc",
					File:    file,
					Dir:     "/jobs/wc",
					Params:  map[string]string{"job_dir": "/jobs/wc", "input": "/data/*.txt", "output": "-"},
					Modules: []Module{{Name: "wc", Path: "/jobs/wc/wc.wasm", Line: 8}},
					Source:  Source{Kind: "text", Globs: []string{"/data/*.txt"}, Line: 11},
					Steps: []Step{
						{Op: planner.OpFlatMap, Module: "wc", Function: "split", Line: 14},
						{Op: planner.OpReduceByKey, Module: "wc", Function: "sum", Line: 16},
					},
					Sink:    Sink{Kind: "text", Stdout: true, Line: 19},
					Conf:    DefaultConf(),
					display: file,
				}
				want.Conf.Partitions = 4
				if !reflect.DeepEqual(s, want) {
					t.Errorf("got  %+v\nwant %+v", s, want)
				}
			},
		},
		{
			name: "inline steps",
			spec: `
steps = [{ map = "m.upper" }, { filter = "m.long" },
  { flat_map = "m.words.all" }, { reduce_by_key = "m.sum" }]
[modules.m]
go = "guest"
[source]
text = ["/a/*.txt", "/b/*.txt"]
[sink]
text = "/out"
`,
			check: func(t *testing.T, s *Spec) {
				want := []Step{
					{Op: planner.OpMap, Module: "m", Function: "upper", Line: 2},
					{Op: planner.OpFilter, Module: "m", Function: "long", Line: 2},
					{Op: planner.OpFlatMap, Module: "m", Function: "words.all", Line: 3},
					{Op: planner.OpReduceByKey, Module: "m", Function: "sum", Line: 3},
				}
				if !reflect.DeepEqual(s.Steps, want) {
					t.Errorf("steps = %+v, want %+v", s.Steps, want)
				}
				if s.Name != "job" {
					t.Errorf("name = %q, want the file's base name %q", s.Name, "job")
				}
				if s.Modules[0].GoDir != "/jobs/wc/guest" || s.Modules[0].Path != "" {
					t.Errorf("module = %+v", s.Modules[0])
				}
				if got := s.Source.Globs; !reflect.DeepEqual(got, []string{"/a/*.txt", "/b/*.txt"}) {
					t.Errorf("globs = %q", got)
				}
				if s.Sink != (Sink{Kind: "text", Path: "/out", Line: 9}) {
					t.Errorf("sink = %+v", s.Sink)
				}
			},
		},
		{
			name:   "param overrides default",
			spec:   baseSpec,
			params: map[string]string{"input": "/other/*.log"},
			check: func(t *testing.T, s *Spec) {
				if got := s.Source.Globs; !reflect.DeepEqual(got, []string{"/other/*.log"}) {
					t.Errorf("globs = %q", got)
				}
				if s.Params["input"] != "/other/*.log" {
					t.Errorf("params = %v", s.Params)
				}
			},
		},
		{
			name: "job_dir and chained defaults",
			spec: edit(t, `input = "/data/*.txt"`, `data = "${job_dir}/data"`+"\n"+`input = "${data}/*.txt"`),
			check: func(t *testing.T, s *Spec) {
				if got := s.Source.Globs; !reflect.DeepEqual(got, []string{"/jobs/wc/data/*.txt"}) {
					t.Errorf("globs = %q", got)
				}
				if s.Params["job_dir"] != "/jobs/wc" || s.Params["data"] != "/jobs/wc/data" {
					t.Errorf("params = %v", s.Params)
				}
			},
		},
		{
			name:   "param chain uses an override",
			spec:   edit(t, `input = "/data/*.txt"`, `data = "/data"`+"\n"+`input = "${data}/*.txt"`),
			params: map[string]string{"data": "/mnt"},
			check: func(t *testing.T, s *Spec) {
				if got := s.Source.Globs; !reflect.DeepEqual(got, []string{"/mnt/*.txt"}) {
					t.Errorf("globs = %q", got)
				}
			},
		},
		{
			name:   "escaping of quotes, backslashes and newlines",
			spec:   baseSpec,
			params: map[string]string{"output": "/out/a \"q\" \\b\\ \nc\td$${x}'''\"\"\""},
			check: func(t *testing.T, s *Spec) {
				want := "/out/a \"q\" \\b\\ \nc\td$${x}'''\"\"\""
				if s.Sink.Path != want || s.Sink.Line != 19 {
					t.Errorf("sink = %+v, want path %q", s.Sink, want)
				}
			},
		},
		{
			name: "dollar escape and literal strings",
			spec: edit(t, `name = "wc"`, `name = 'cost$$ ${input}'`),
			check: func(t *testing.T, s *Spec) {
				if s.Name != "cost$ /data/*.txt" {
					t.Errorf("name = %q", s.Name)
				}
			},
		},
		{
			name: "byte order mark",
			spec: "\ufeff" + baseSpec,
			check: func(t *testing.T, s *Spec) {
				if s.Name != "wc" || s.Sink.Line != 19 {
					t.Errorf("spec = %+v", s)
				}
			},
		},
		{
			name: "multi-line string keeps line numbers",
			spec: edit(t, `text = "${input}"`, "text = \"\"\"\n${input}\\\n  \"\"\""),
			check: func(t *testing.T, s *Spec) {
				if got := s.Source.Globs; !reflect.DeepEqual(got, []string{"/data/*.txt"}) {
					t.Errorf("globs = %q", got)
				}
				if s.Steps[1].Line != 18 || s.Sink.Line != 21 {
					t.Errorf("lines moved: steps %+v, sink %+v", s.Steps, s.Sink)
				}
			},
		},
		{
			name: "conf in the file and on the command line",
			spec: edit(t, "partitions = 4", `partitions = "8"
source.split_size = 4096
source.max_record = "1GiB"
task = { memory = "1GB", timeout = "90s", max_attempts = 5 }
batch.size = "512KiB"
shuffle.memory = "128MiB"
shuffle.compression_level = 3
sink.overwrite = true`),
			conf: map[string]string{"task.timeout": "1h", "partitions": "2", "sink.overwrite": "false"},
			check: func(t *testing.T, s *Spec) {
				want := Conf{
					Partitions: 2, SplitSize: 4096, MaxRecord: GiB, TaskMemory: 1e9,
					TaskTimeout: Duration(time.Hour), MaxAttempts: 5, MaxOutput: 16 * GiB, BatchSize: 512 * KiB,
					ShuffleMemory: 128 * MiB, CompressionLevel: 3, SinkOverwrite: false, BroadcastThreshold: 10 * MiB,
				}
				if s.Conf != want {
					t.Errorf("conf = %+v, want %+v", s.Conf, want)
				}
			},
		},
		{
			name:   "conf value from a parameter",
			spec:   edit(t, "partitions = 4", `task.timeout = "${timeout}"`),
			params: map[string]string{"timeout": "2m"},
			check: func(t *testing.T, s *Spec) {
				if s.Conf.TaskTimeout != Duration(2*time.Minute) {
					t.Errorf("timeout = %v", s.Conf.TaskTimeout)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.spec), file, tt.params, tt.conf)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, s)
		})
	}
}

func TestParseErrors(t *testing.T) {
	none := map[string]string(nil)
	tests := []struct {
		name   string
		spec   string
		params map[string]string
		conf   map[string]string
		want   string
	}{
		// Decoding.
		{"syntax", edit(t, "partitions = 4", "partitions = [4"), none, none,
			"job.toml:22:16: array is incomplete"},
		{"duplicate key", edit(t, "partitions = 4", "partitions = 4\npartitions = 5"), none, none,
			"job.toml:23:1: key partitions is already defined"},
		{"unknown conf key", edit(t, "partitions = 4", "partitons = 4"), none, none,
			`job.toml:22: unknown key "partitons" in [conf]; did you mean "partitions"?`},
		{"unknown dotted conf key", edit(t, "partitions = 4", `task.timeot = "1m"`), none, none,
			`job.toml:22: unknown key "task.timeot" in [conf]; did you mean "task.timeout"?`},
		{"unknown key in conf subtable", edit(t, "[conf]\npartitions = 4", "[conf.task]\ntimeot = \"1m\""), none, none,
			`job.toml:22: unknown key "timeot" in [conf.task]; did you mean "timeout"?`},
		{"unknown conf table", edit(t, "[conf]\npartitions = 4", "[conf.tsk]\ntimeout = \"1m\""), none, none,
			`job.toml:21: unknown table [conf.tsk]; did you mean [conf.task]?`},
		{"unknown table", edit(t, "[source]", "[sorce]"), none, none,
			`job.toml:10: unknown table [sorce]; did you mean [source]?`},
		{"two unknown keys", strings.Replace(edit(t, "partitions = 4", "partitons = 4"), `name = "wc"`, `nmae = "wc"`, 1), none, none,
			`job.toml:1: unknown key "nmae"; did you mean "name"?`},
		{"unknown top-level key", edit(t, `name = "wc"`, `nmae = "wc"`), none, none,
			`job.toml:1: unknown key "nmae"; did you mean "name"?`},
		{"unknown key without suggestion", edit(t, `name = "wc"`, `owner = "me"`), none, none,
			`job.toml:1: unknown key "owner"`},
		{"unknown module key", edit(t, `path = "wc.wasm"`, `pth = "wc.wasm"`), none, none,
			`job.toml:8: unknown key "pth" in [modules.wc]; did you mean "path"?`},
		{"unknown key in inline table", "source = { text = \"${input}\", txet = 2 }\n[params]\ninput = \"x\"\n", none, none,
			`job.toml:1: unknown key "txet" in [source]; did you mean "text"?`},
		{"table of wrong type", "modules = 3\n", none, none,
			`job.toml:1: modules must be a table, like [modules], not an integer`},
		{"array of tables instead of a table", "[[conf]]\n", none, none,
			`job.toml:1: conf must be a table, like [conf], not an array of tables`},
		{"inline table of wrong type", "modules = { wc = 3 }\n", none, none,
			`job.toml:1: modules.wc must be a table, like [modules.wc], not an integer`},
		{"step of wrong type", "steps = [{ map = \"m.f\" },\n  3]\n", none, none,
			`job.toml:2: step 2 must be a table with one operator, like { map = "module.function" }, not an integer`},
		{"steps of wrong type", "steps = 3\n", none, none,
			`job.toml:1: steps must be an array of tables, like [[steps]] or steps = [{ map = "module.function" }], not an integer or an array of them`},

		// Parameters.
		{"unset parameter", edit(t, `output = "-"`, `# no default`), none, none,
			"job.toml:19: parameter ${output} is never set: pass --param output=VALUE or give it a default under [params]"},
		{"unused --param", baseSpec, map[string]string{"outptu": "x"}, none,
			`--param outptu=x is not used by job.toml; its parameters are: input, output (did you mean "output"?)`},
		{"unused long --param", baseSpec, map[string]string{"inptu": strings.Repeat("x", 50)}, none,
			`--param inptu=` + strings.Repeat("x", 40) + `... is not used by job.toml; its parameters are: input, output (did you mean "input"?)`},
		{"unused --param, no parameters", "", map[string]string{"x": "1"}, none,
			`--param x=1 is not used by job.toml, which has no parameters`},
		{"--param job_dir", baseSpec, map[string]string{"job_dir": "/x"}, none,
			"--param job_dir cannot be set: job_dir is built in (the directory of job.toml)"},
		{"job_dir under [params]", edit(t, `output = "-"`, `job_dir = "/x"`), none, none,
			"job.toml:5: parameter job_dir is built in (the directory of job.toml) and cannot be set under [params]"},
		{"parameter not valid UTF-8", baseSpec, map[string]string{"output": "/out/\xff"}, none,
			"job.toml:19: the value of parameter ${output} is not valid UTF-8, which a TOML string cannot hold"},
		{"non-string parameter", edit(t, `output = "-"`, `output = 3`), none, none,
			`job.toml:5: parameter "output" must be a string, not an integer: put its value in quotes`},
		{"lone dollar", edit(t, `text = "${input}"`, `text = "$input"`), none, none,
			`job.toml:11: a lone "$" in "$input": write ${name} to use a parameter, or $$ for a literal "$"`},
		{"unterminated reference", edit(t, `text = "${input}"`, `text = "${input"`), none, none,
			`job.toml:11: unterminated parameter reference "${input": write ${name}, or $$ for a literal "$"`},
		{"bad reference", edit(t, `text = "${input}"`, `text = "${in put}"`), none, none,
			`job.toml:11: "${in put}" is not a parameter reference: a name has letters, digits, "_" and "-" and starts with a letter or "_"; write $$ for a literal "$"`},
		{"parameter cycle", strings.Replace(edit(t, `input = "/data/*.txt"`, `input = "${output}/x"`), `output = "-"`, `output = "${input}"`, 1), none, none,
			"job.toml:4: parameter ${input} refers to itself (input -> output -> input): break the cycle"},
		{"unset parameter in a default", edit(t, `input = "/data/*.txt"`, `input = "${root}/*.txt"`), none, none,
			"job.toml:4: parameter ${root} is never set: pass --param root=VALUE or give it a default under [params]"},

		// Steps.
		{"unknown operator", edit(t, `flat_map = "wc.split"`, `flatmap = "wc.split"`), none, none,
			`job.toml:14: unknown operator "flatmap"; operators are map, flat_map, filter, map_values, key_by, map_partitions, sample, reduce_by_key, aggregate_by_key, sort_by_key, group_by_key, distinct, count_by_key, coalesce, join, left_outer_join, cogroup, repartition, partition_by, union (did you mean "flat_map"?)`},
		{"unknown operator without suggestion", edit(t, `flat_map = "wc.split"`, `zip = "wc.split"`), none, none,
			`job.toml:14: unknown operator "zip"; operators are map, flat_map, filter, map_values, key_by, map_partitions, sample, reduce_by_key, aggregate_by_key, sort_by_key, group_by_key, distinct, count_by_key, coalesce, join, left_outer_join, cogroup, repartition, partition_by, union`},
		{"join of no dataset", edit(t, `flat_map = "wc.split"`, `join = "customers"`), none, none,
			`job.toml:14: join = "customers": no [datasets.customers] table: add one with its source and steps`},
		{"undefined module", edit(t, `reduce_by_key = "wc.sum"`, `reduce_by_key = "wx.sum"`), none, none,
			`job.toml:16: module "wx" is not defined; modules are: wc (did you mean "wc"?)`},
		{"not module.function", edit(t, `reduce_by_key = "wc.sum"`, `reduce_by_key = "wcsum"`), none, none,
			`job.toml:16: reduce_by_key = "wcsum" is not of the form "module.function", like "wc.split"`},
		{"bad function name", edit(t, `reduce_by_key = "wc.sum"`, `reduce_by_key = "wc.s um"`), none, none,
			`job.toml:16: function name "s um" in "wc.s um" is not valid: a name has up to 128 letters, digits, "_", "." and "-", and starts with a letter or "_"`},
		{"operator value not a string", edit(t, `reduce_by_key = "wc.sum"`, `reduce_by_key = 1`), none, none,
			`job.toml:16: reduce_by_key must be a string "module.function", not an integer`},
		{"step with two keys", edit(t, `flat_map = "wc.split"`, `flat_map = "wc.split"`+"\n"+`map = "wc.m"`), none, none,
			`job.toml:13: step 1 has 2 keys (flat_map, map): a step has exactly one, its operator; give each operator its own step`},
		{"step with no key", edit(t, `flat_map = "wc.split"`, `# empty`), none, none,
			`job.toml:13: step 1 has no operator: give it one of map, flat_map, filter, map_values, key_by, map_partitions, sample, reduce_by_key, aggregate_by_key, sort_by_key, group_by_key, distinct, count_by_key, coalesce, join, left_outer_join, cogroup, repartition, partition_by, union, like flat_map = "module.function"`},
		{"inline step with no key", "[modules.m]\npath = \"m.wasm\"\n[source]\ntext = \"a\"\n[sink]\ntext = \"-\"\n[[steps]]\nmap = \"m.f\"\n", none, none, ""},
		{"no steps: the source as it is", edit(t, "[[steps]]\nflat_map = \"wc.split\"\n[[steps]]\nreduce_by_key = \"wc.sum\"\n", ""), none, none, ""},

		// Modules, source, sink, name.
		{"module with go and path", edit(t, `path = "wc.wasm"`, `path = "wc.wasm"`+"\n"+`go = "guest"`), none, none,
			`job.toml:7: modules.wc has go and path: give exactly one of go, path and dir`},
		{"module with neither", edit(t, `path = "wc.wasm"`, `# none`), none, none,
			`job.toml:7: modules.wc has none of go, path and dir: give go = "<Go package directory>", path = "<file>.wasm" or dir = "<guest directory>"`},
		{"module name with a dot", edit(t, "[modules.wc]", `[modules."w.c"]`), none, none,
			`job.toml:7: module name "w.c" cannot contain ".": steps refer to functions as module.function`},
		{"missing source", edit(t, "[source]\ntext = \"${input}\"", ""), none, none,
			`job.toml: missing [source]: add a [source] table with text = "<glob>" (or an array of globs)`},
		{"source without text", edit(t, "text = \"${input}\"", ""), none, none,
			`job.toml:10: [source] has no input: add text = "<glob>" (or an array of globs)`},
		{"source element of wrong type", edit(t, "text = \"${input}\"", "text = [\"a\",\n 3]"), none, none,
			`job.toml:12: source.text[1] must be a string, not an integer`},
		{"bad glob", edit(t, "text = \"${input}\"", `text = "data/[a"`), none, none,
			`job.toml:11: source.text: "data/[a" is not a valid glob (syntax error in pattern): escape a literal *, ?, [ or \ with \`},
		{"missing sink", edit(t, "[sink]\ntext = \"${output}\"", ""), none, none,
			`job.toml: missing [sink]: add a [sink] table with text = "<output directory>", or text = "-" for standard output`},
		{"empty sink", baseSpec, map[string]string{"output": ""}, none,
			`job.toml:19: sink.text is empty: give an output directory, or "-" for standard output`},
		{"name of wrong type", edit(t, `name = "wc"`, `name = 1`), none, none,
			`job.toml:1: name must be a string, not an integer`},

		// Conf.
		{"conf type in file", edit(t, "partitions = 4", "partitions = true"), none, none,
			`job.toml:22: conf.partitions: expected an integer, found a boolean`},
		{"conf value in file", edit(t, "partitions = 4", `partitions = "four"`), none, none,
			`job.toml:22: conf.partitions: "four" is not an integer`},
		{"conf range in file", edit(t, "partitions = 4", `shuffle.compression_level = 9`), none, none,
			`job.toml:22: conf.shuffle.compression_level: 9 is out of range: must be 1 to 4`},
		{"conf size in file", edit(t, "partitions = 4", `task.memory = "8GiB"`), none, none,
			`job.toml:22: conf.task.memory: 8GiB is out of range: must be 64KiB to 4GiB`},
		{"conf duration in file", edit(t, "partitions = 4", `task.timeout = 10`), none, none,
			`job.toml:22: conf.task.timeout: expected a duration string like "10m" or "90s", found an integer`},
		{"--conf duration", baseSpec, none, map[string]string{"task.timeout": "10"},
			`--conf task.timeout: "10" is not a duration: use Go syntax, like "90s", "10m" or "1h30m"`},
		{"--conf integer", baseSpec, none, map[string]string{"partitions": "four"},
			`--conf partitions: "four" is not an integer`},
		{"--conf range", baseSpec, none, map[string]string{"task.max_attempts": "0"},
			`--conf task.max_attempts: 0 is out of range: must be at least 1`},
		{"--conf bool", baseSpec, none, map[string]string{"sink.overwrite": "yes"},
			`--conf sink.overwrite: "yes" is not a boolean: use true or false`},
		{"--conf size", baseSpec, none, map[string]string{"batch.size": "1.5MiB"},
			`--conf batch.size: "1.5MiB" is not a size: use a whole number of bytes, or one with a unit, like "64MiB", "512KiB" or "1GB"`},
		{"--conf unknown key", baseSpec, none, map[string]string{"partitons": "4"},
			`--conf partitons: unknown conf key (did you mean "partitions"?); known keys are: partitions, source.split_size, source.max_record, task.memory, task.timeout, task.max_attempts, task.max_output, batch.size, shuffle.memory, shuffle.compression_level, sink.overwrite, join.broadcast_threshold`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.spec), "job.toml", tt.params, tt.conf)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want error %q", s, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *Error: %v", err, err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestParseFileName(t *testing.T) {
	s, err := Parse([]byte(baseSpec[strings.Index(baseSpec, "\n"):]), "jobs/wordcount.v2.toml", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "wordcount.v2" {
		t.Errorf("name = %q, want wordcount.v2", s.Name)
	}
	if !filepath.IsAbs(s.File) || filepath.Base(s.File) != "wordcount.v2.toml" || s.Dir != filepath.Dir(s.File) {
		t.Errorf("file = %q, dir = %q", s.File, s.Dir)
	}
	if s.Params["job_dir"] != s.Dir {
		t.Errorf("job_dir = %q, want %q", s.Params["job_dir"], s.Dir)
	}
	if _, err := Parse(nil, "", nil, nil); err == nil {
		t.Error("Parse with no file name succeeded")
	}
}

func TestParseAssignments(t *testing.T) {
	got, err := ParseAssignments([]string{"a=1", "b=x=y", "c=", " d =v"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "1", "b": "x=y", "c": "", "d": "v"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{[]string{"a"}, `"a" has no "=": write name=value`},
		{[]string{"=1"}, `"=1" has no name before "=": write name=value`},
		{[]string{"a=1", "a=2"}, `"a" is given twice (a=1 and a=2): give it once`},
	} {
		if _, err := ParseAssignments(tt.in); err == nil || err.Error() != tt.want {
			t.Errorf("ParseAssignments(%q) = %v, want %s", tt.in, err, tt.want)
		}
	}
}

// TestExample parses the wordcount example of the repository, if present.
func TestExample(t *testing.T) {
	path := filepath.Join("..", "..", "examples", "wordcount", "job.toml")
	if _, err := os.Stat(path); err != nil {
		t.Skip(err)
	}
	s, err := Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Steps) != 2 || s.Steps[0].Op != planner.OpFlatMap || !s.Sink.Stdout || s.Modules[0].Dir == "" {
		t.Errorf("spec = %+v", s)
	}
}

func TestRecordsAndSortSteps(t *testing.T) {
	const spec = `name = "tera"
[source]
records = "/in/*"
record_size = 100
key_size = 10
[[steps]]
sort_by_key = { partitions = 7 }
[[steps]]
sort_by_key = true
[sink]
records = "/out"
`
	s, err := Parse([]byte(spec), "/jobs/job.toml", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Source.Kind != "records" || s.Source.RecordSize != 100 || s.Source.KeySize != 10 || s.Source.Globs[0] != "/in/*" {
		t.Errorf("source %+v", s.Source)
	}
	if len(s.Steps) != 2 || s.Steps[0].Op != planner.OpSortByKey || s.Steps[0].Partitions != 7 || s.Steps[1].Partitions != 0 {
		t.Errorf("steps %+v", s.Steps)
	}
	if s.Sink.Kind != "records" || s.Sink.Path != "/out" {
		t.Errorf("sink %+v", s.Sink)
	}
	bad := []struct{ old, new, want string }{
		{"record_size = 100", "record_size = 0", "source.record_size must be the length of a record"},
		{"key_size = 10", "key_size = 101", "source.key_size must be 0 to record_size (100) bytes"},
		{`records = "/in/*"`, "records = \"/in/*\"\ntext = \"/x\"", "more than one of text, csv, json and records"},
		{"sort_by_key = true", `sort_by_key = "m.f"`, "sort_by_key takes no function"},
		{"sort_by_key = { partitions = 7 }", "sort_by_key = { parts = 7 }", `sort_by_key has no setting "parts"`},
		{"sort_by_key = { partitions = 7 }", "sort_by_key = { partitions = 0 }", "sort_by_key partitions must be a whole number from 1 to 100000"},
		{`records = "/out"`, `records = "-"`, "sink.records must be an output directory"},
		{`records = "/out"`, "records = \"/out\"\ntake = 5", "sink.take counts lines of text output"},
	}
	for _, b := range bad {
		if !strings.Contains(spec, b.old) {
			t.Fatalf("%q not in the spec", b.old)
		}
		_, err := Parse([]byte(strings.Replace(spec, b.old, b.new, 1)), "/jobs/job.toml", nil, nil)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s → %v, want an error with %q", b.new, err, b.want)
		}
	}
}

func TestCSVSource(t *testing.T) {
	parse := func(src string) (*Spec, error) {
		return Parse([]byte("[modules.m]\npath = \"m.wasm\"\n[source]\n"+src+"\n[[steps]]\nmap = \"m.f\"\n[sink]\ntext = \"-\"\n"), "/j/job.toml", nil, nil)
	}
	s, err := parse(`csv = "/in/*.csv"`)
	if err != nil || s.Source.Kind != "csv" || !s.Source.Header || s.Source.Globs[0] != "/in/*.csv" {
		t.Fatalf("csv source: %+v %v", s, err)
	}
	if s, err = parse("csv = \"/in/*.csv\"\nheader = false"); err != nil || s.Source.Header {
		t.Fatalf("header = false: %+v %v", s, err)
	}
	if s, err = parse(`json = "/in/*.jsonl"`); err != nil || s.Source.Kind != "json" {
		t.Fatalf("json source: %+v %v", s, err)
	}
	for src, want := range map[string]string{
		"text = \"a\"\nheader = true":   "header goes with csv",
		"csv = \"a\"\ntext = \"b\"":     "more than one of text, csv, json and records",
		"csv = \"a\"\nheader = \"yes\"": "source.header must be true or false",
	} {
		if _, err := parse(src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
}

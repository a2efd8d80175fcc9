package jobspec

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wasmgrid/wasmgrid/planner"
)

// FuzzParse feeds arbitrary bytes as a spec, with one --param, to Parse: it
// must never panic, must fail only with an *Error whose line is in the
// document, and must return a spec that holds together.
func FuzzParse(f *testing.F) {
	f.Add([]byte(baseSpec), "output=/tmp/out")
	f.Add([]byte(baseSpec), "input=a\"b\\c\nd")
	f.Add([]byte(checkSpec), "output=-")
	f.Add([]byte(`steps = [{ map = "m.f" }]
[modules.m]
path = "m.wasm"
[source]
text = """
${x}
"""
[sink]
text = '-'
`), "x=${y}$$")
	f.Add([]byte("[conf]\npartitions = 1\ntask = { timeout = \"${t}\" }\n"), "t=1m")
	f.Add([]byte("[params]\na = \"${b}\"\nb = \"${a}\"\n"), "c=1")
	f.Add([]byte("a = [1,\n"), "")
	f.Add([]byte("[[steps]]\n[[steps.x]]\n[steps.y]\n"), "=")
	f.Add([]byte("\ufeff[source]\ntext = { a = [\"${p}\", '''\n$$'''] }\n"), "p=\xff")
	f.Add([]byte("[[conf]]\n[modules.\"a.b\"]\nx.y = 1\n"), "job_dir=/")
	f.Add([]byte(`name = "pr"
steps = [{ map_values = "m.f" }, { join = "links" }, { sample = { fraction = 0.5, seed = 3 } }, { aggregate_by_key = { create = "m.c", merge = "m.g" } }, { cogroup = "links" }, { map_partitions = "m.p" }]
[modules.m]
dir = "g"
[source]
dataset = "links"
[datasets.links]
source = { inline = ["a b", "${v}"], parts = 2 }
steps = [{ key_by = "m.k" }, { union = "more" }]
cache = "${c}"
[datasets.more]
source = { csv = "x.csv", header = false }
[sink]
csv = "-"
header = true
`), "c=true")
	f.Add([]byte("[source]\njson = \"a\"\n[sink]\ncount = true\n"), "v=1")
	f.Fuzz(func(t *testing.T, data []byte, param string) {
		var params map[string]string
		if k, v, ok := strings.Cut(param, "="); ok {
			params = map[string]string{k: v}
		}
		s, err := Parse(data, "fuzz.toml", params, nil)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *Error: %v", err, err)
			}
			if e.Line < 0 || e.Line > bytes.Count(data, []byte("\n"))+1 {
				t.Fatalf("error line %d out of the document: %v", e.Line, err)
			}
			if e.Msg == "" {
				t.Fatalf("error without a message: %#v", e)
			}
			return
		}
		if s.Name == "" {
			t.Fatalf("spec without a name: %+v", s)
		}
		sources := []Source{s.Source}
		for name, c := range s.Datasets {
			if c.Name != name {
				t.Fatalf("dataset %q named %q", name, c.Name)
			}
			sources = append(sources, c.Source)
		}
		for _, src := range sources {
			switch src.Kind {
			case "text", "csv", "json", "records":
				if len(src.Globs) == 0 {
					t.Fatalf("file source without globs: %+v", src)
				}
			case "dataset":
				if s.Datasets[src.Dataset] == nil {
					t.Fatalf("source of an undefined dataset: %+v", src)
				}
			case "generate", "inline":
			default:
				t.Fatalf("source of kind %q", src.Kind)
			}
		}
		for i, m := range s.Modules {
			given := 0
			for _, p := range []string{m.Path, m.GoDir, m.Dir} {
				if p != "" {
					given++
				}
			}
			if given != 1 || (i > 0 && s.Modules[i-1].Name >= m.Name) {
				t.Fatalf("bad modules: %+v", s.Modules)
			}
		}
		steps := slices.Clone(s.Steps)
		for _, c := range s.Datasets {
			steps = append(steps, c.Steps...)
		}
		for _, st := range steps {
			switch {
			case !isOp(string(st.Op)):
				t.Fatalf("step of an unknown operator: %+v", st)
			case readsSide(st.Op) && s.Datasets[st.With] == nil:
				t.Fatalf("step reads an undefined dataset: %+v", st)
			case !builtin(st.Op) && !readsSide(st.Op) && (st.Module == "" || st.Function == ""):
				t.Fatalf("step without a function: %+v", st)
			case st.Op == planner.OpAggregateByKey && (st.MergeModule == "" || st.MergeFunction == ""):
				t.Fatalf("aggregate without a merge function: %+v", st)
			case st.Op == planner.OpSample && !(st.Fraction >= 0 && st.Fraction <= 1):
				t.Fatalf("sample of fraction %v", st.Fraction)
			}
		}
		switch s.Sink.Kind {
		case "text", "json", "csv":
			if (s.Sink.Path == "") != s.Sink.Stdout {
				t.Fatalf("sink %+v: a directory or standard output", s.Sink)
			}
		case "records":
			if s.Sink.Path == "" {
				t.Fatalf("records sink without a directory")
			}
		case "count":
		default:
			t.Fatalf("sink of kind %q", s.Sink.Kind)
		}
	})
}

// FuzzParamValue checks the escaping of substituted values: whatever a
// --param holds, a string made of it decodes to exactly that text, and the
// lines after it keep their numbers.
func FuzzParamValue(f *testing.F) {
	for _, v := range []string{"x", `"`, `\`, "a\nb", `"""`, "'''", "\\\n", "\x00\x7f", "${x}", "é✓", "\r\n"} {
		f.Add(v)
	}
	oneLine := strings.Replace(baseSpec, `name = "wc"`, `name = "<${v}>$$"`, 1)
	multiLine := strings.Replace(baseSpec, `name = "wc"`, "name = \"\"\"\n<${v}>\\\n  $$${v}\"\"\"", 1)
	f.Fuzz(func(t *testing.T, v string) {
		for _, tt := range []struct {
			spec, name string
			lines      int
		}{
			{oneLine, "<" + v + ">$", 0},
			{multiLine, "<" + v + ">$" + v, 2},
		} {
			s, err := Parse([]byte(tt.spec), "job.toml", map[string]string{"v": v}, nil)
			if !utf8.ValidString(v) {
				if err == nil {
					t.Fatalf("invalid UTF-8 %q accepted", v)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Name != tt.name {
				t.Fatalf("name = %q, want %q", s.Name, tt.name)
			}
			if s.Sink.Line != 19+tt.lines || s.Steps[1].Line != 16+tt.lines {
				t.Fatalf("lines moved: sink %d, step %d", s.Sink.Line, s.Steps[1].Line)
			}
		}
	})
}

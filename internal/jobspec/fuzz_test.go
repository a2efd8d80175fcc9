package jobspec

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
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
		if len(s.Steps) == 0 || s.Source.Kind != "text" || len(s.Source.Globs) == 0 || s.Name == "" {
			t.Fatalf("incomplete spec: %+v", s)
		}
		for i, m := range s.Modules {
			if (m.Path == "") == (m.GoDir == "") || (i > 0 && s.Modules[i-1].Name >= m.Name) {
				t.Fatalf("bad modules: %+v", s.Modules)
			}
		}
		for _, st := range s.Steps {
			if !isOp(string(st.Op)) || st.Module == "" || st.Function == "" {
				t.Fatalf("bad step: %+v", st)
			}
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

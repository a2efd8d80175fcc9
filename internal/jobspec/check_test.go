package jobspec

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const checkSpec = `[params]
input = "${job_dir}/data/*.txt"
output = "${job_dir}/out"

[modules.wc]
path = "wc.wasm"
[modules.g]
go = "guest"

[source]
text = "${input}"

[[steps]]
map = "wc.f"
[[steps]]
map = "g.f"

[sink]
text = "${output}"
`

// checkDir lays out a job directory in which checkSpec passes Check.
func checkDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("job.toml", checkSpec)
	write("data/a.txt", "hello\n")
	write("wc.wasm", "\x00asm\x01\x00\x00\x00")
	write("guest/main.go", "package main\n")
	write("x.txt", "not wasm")
	write("full/part-00000", "x\n")
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCheck(t *testing.T) {
	dir := checkDir(t)
	file := filepath.Join(dir, "job.toml")
	tests := []struct {
		name   string
		params map[string]string
		conf   map[string]string
		spec   func(string) string
		want   []string // messages, after file:line:
	}{
		{name: "ok"},
		{name: "empty output directory", params: map[string]string{"output": dir + "/empty"}},
		{name: "output to stdout", params: map[string]string{"output": "-"}},
		{name: "overwrite", params: map[string]string{"output": dir + "/full"}, conf: map[string]string{"sink.overwrite": "true"}},
		{
			name:   "no file matches",
			params: map[string]string{"input": dir + "/data/*.csv"},
			want:   []string{`:11: source.text: no file matches "` + dir + `/data/*.csv": check the pattern, or pass the right --param`},
		},
		{
			name:   "only a directory matches",
			params: map[string]string{"input": dir + "/dat?"},
			want:   []string{`:11: source.text: no file matches "` + dir + `/dat?": check the pattern, or pass the right --param`},
		},
		{
			name: "not wasm",
			spec: func(s string) string { return strings.Replace(s, "wc.wasm", "x.txt", 1) },
			want: []string{`:6: modules.wc: x.txt is not a WebAssembly module (it does not start with \0asm)`},
		},
		{
			name: "path is a directory",
			spec: func(s string) string { return strings.Replace(s, `path = "wc.wasm"`, `path = "guest"`, 1) },
			want: []string{`:6: modules.wc: guest is a directory, not a WebAssembly module (for a Go package, write go = instead of path =)`},
		},
		{
			name: "no go files",
			spec: func(s string) string { return strings.Replace(s, `go = "guest"`, `go = "data"`, 1) },
			want: []string{`:8: modules.g: data contains no .go files: go = names the directory of the guest's Go package`},
		},
		{
			name:   "output not empty",
			params: map[string]string{"output": dir + "/full"},
			want:   []string{`:19: sink.text: output directory ` + dir + `/full is not empty: remove it, or pass --conf sink.overwrite=true to replace it`},
		},
		{
			name:   "output is a file",
			params: map[string]string{"output": dir + "/x.txt"},
			want:   []string{`:19: sink.text: ` + dir + `/x.txt exists and is not a directory: remove it or choose another output`},
		},
		{
			name:   "several problems",
			params: map[string]string{"output": dir + "/no/such/out", "input": dir + "/none"},
			spec:   func(s string) string { return strings.Replace(s, "wc.wasm", "x.txt", 1) },
			want: []string{
				`:11: source.text: no file matches "` + dir + `/none": check the pattern, or pass the right --param`,
				`:6: modules.wc: x.txt is not a WebAssembly module (it does not start with \0asm)`,
				`:19: sink.text: the output's parent directory does not exist: stat ` + dir + `/no/such: no such file or directory`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := checkSpec
			if tt.spec != nil {
				text = tt.spec(text)
			}
			s, err := Parse([]byte(text), file, tt.params, tt.conf)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			err = s.Check()
			var want []string
			for _, w := range tt.want {
				want = append(want, file+w)
			}
			if got := errorLines(err); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("Check:\n got %q\nwant %q", got, want)
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Errorf("Check error %T is not an *Error", err)
				}
			}
		})
	}
}

func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestCheckMissingModule(t *testing.T) {
	dir := checkDir(t)
	s, err := Parse([]byte(strings.Replace(checkSpec, "wc.wasm", "gone.wasm", 1)), filepath.Join(dir, "job.toml"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Check()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Check = %v, want an error that is fs.ErrNotExist", err)
	}
	if err == nil || !strings.Contains(err.Error(), ":6: modules.wc: cannot open the module: open "+dir+"/gone.wasm: no such file or directory") {
		t.Errorf("Check = %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := checkDir(t)
	s, err := Load(filepath.Join(dir, "job.toml"), nil, map[string]string{"partitions": "3"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "job" || s.Dir != dir || s.Conf.Partitions != 3 || s.Source.Globs[0] != dir+"/data/*.txt" {
		t.Errorf("Load = %+v", s)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	_, err = Load(filepath.Join(dir, "nope.toml"), nil, nil)
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), dir+"/nope.toml: cannot read the job spec: open ") {
		t.Errorf("Load(missing) = %v", err)
	}
}

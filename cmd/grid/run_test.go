package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = execute(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func abs(t *testing.T, rel string) string {
	p, err := filepath.Abs(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunWordCountExample(t *testing.T) {
	code, stdout, stderr := run(t, "run", abs(t, "examples/wordcount/job.toml"), "--progress", "none", "--slots", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"the\t32\n", "jabberwock\t3\n", "tyger\t4\n", "what\t14\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !strings.Contains(stderr, "job wordcount (job-1) succeeded") || !strings.Contains(stderr, "stages: 2, tasks: 4, attempts: 4") {
		t.Errorf("summary:\n%s", stderr)
	}
}

func TestRunWritesTextSink(t *testing.T) {
	out := filepath.Join(t.TempDir(), "counts")
	code, stdout, stderr := run(t, "run", abs(t, "examples/wordcount/job.toml"), "-p", "output="+out, "--progress", "lines", "-c", "partitions=3")
	if code != 0 || stdout != "" {
		t.Fatalf("exit %d, stdout %q: %s", code, stdout, stderr)
	}
	for _, f := range []string{"part-00000", "part-00001", "part-00002", "_SUCCESS"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "_temporary")); !os.IsNotExist(err) {
		t.Errorf("_temporary left behind: %v", err)
	}
	if !strings.Contains(stderr, "stage 1 (sum): 3/3 tasks done") {
		t.Errorf("no progress lines in:\n%s", stderr)
	}
	// A second run refuses to overwrite the result.
	code, _, stderr = run(t, "run", abs(t, "examples/wordcount/job.toml"), "-p", "output="+out, "--progress", "none")
	if code == 0 || !strings.Contains(stderr, "sink.overwrite=true") {
		t.Fatalf("rerun into a full directory: exit %d: %s", code, stderr)
	}
}

// TestBadInputStopsBeforeAnyTask runs specs with one mistake each and
// checks that the error names the file, the line and a fix, and that
// nothing ran.
func TestBadInputStopsBeforeAnyTask(t *testing.T) {
	guest := abs(t, "examples/wordcount/guest/go")
	data := abs(t, "examples/wordcount/data")
	good := `name = "wc"
[params]
input = "` + data + `/*.txt"
[modules.wc]
go = "` + guest + `"
[source]
text = "${input}"
[[steps]]
flat_map = "wc.split"
[[steps]]
reduce_by_key = "wc.sum"
[sink]
text = "-"
`
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notwasm.txt"), []byte("just text"), 0o644)
	tests := []struct {
		name     string
		old, new string
		args     []string
		want     []string
	}{
		{"missing input", "", "", []string{"-p", "input=" + dir + "/nothing*.txt"},
			[]string{"job.toml:7", "no file matches"}},
		{"unknown operator", `flat_map = "wc.split"`, `flatmap = "wc.split"`, nil,
			[]string{"job.toml:9", `unknown operator "flatmap"`, `did you mean "flat_map"`}},
		{"typo in a key", `name = "wc"`, "name = \"wc\"\n[conf]\npartitons = 3", nil,
			[]string{"job.toml:3", `unknown key "partitons"`, `did you mean "partitions"`}},
		{"module not wasm", `go = "` + guest + `"`, `path = "` + dir + `/notwasm.txt"`, nil,
			[]string{"job.toml:5", "not a WebAssembly module"}},
		{"function not exported", `flat_map = "wc.split"`, `flat_map = "wc.splt"`, nil,
			[]string{"job.toml:9", `no function "splt"`, "it has: flat_map split, reduce sum"}},
		{"function of the wrong kind", `flat_map = "wc.split"`, `map = "wc.split"`, nil,
			[]string{"job.toml:9", "split is a flat_map function; map needs a map function"}},
		{"parameter never set", `text = "-"`, `text = "${output}"`, nil,
			[]string{"job.toml:13", "${output} is never set", "--param output=VALUE"}},
		{"unused parameter", "", "", []string{"-p", "outptu=x"},
			[]string{"--param outptu=x is not used"}},
		{"bad conf value", "", "", []string{"-c", "task.memory=lots"},
			[]string{"--conf task.memory", "lots"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := filepath.Join(t.TempDir(), "job.toml")
			text := good
			if tt.old != "" {
				if !strings.Contains(text, tt.old) {
					t.Fatalf("spec lacks %q", tt.old)
				}
				text = strings.Replace(text, tt.old, tt.new, 1)
			}
			os.WriteFile(spec, []byte(text), 0o644)
			code, stdout, stderr := run(t, append([]string{"run", spec, "--progress", "none"}, tt.args...)...)
			if code == 0 {
				t.Fatalf("exit 0 for a bad spec; stderr:\n%s", stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("error lacks %q:\n%s", w, stderr)
				}
			}
			if stdout != "" || strings.Contains(stderr, "stage") {
				t.Errorf("something ran: stdout %q, stderr %q", stdout, stderr)
			}
		})
	}
}

func TestRunUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "accepts 1 arg"},
		{[]string{"run", "x.toml", "--param", "novalue"}, "write it as --param name=value"},
		{[]string{"run", "x.toml", "--progress", "fancy"}, "use auto, bars, lines or none"},
		{[]string{"run", "does-not-exist.toml"}, "does-not-exist.toml"},
	}
	for _, tt := range tests {
		code, _, stderr := run(t, tt.args...)
		if code == 0 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, code, stderr, tt.want)
		}
	}
}

// TestWordCountInEveryLanguage runs the word count with each guest and the
// polyglot job, and checks that they all print the very same counts.
func TestWordCountInEveryLanguage(t *testing.T) {
	outputs := map[string]string{}
	for _, args := range [][]string{
		{"examples/wordcount/job.toml", "-p", "guest=go"},
		{"examples/wordcount/job.toml", "-p", "guest=rust"},
		{"examples/wordcount/job.toml", "-p", "guest=c"},
		{"examples/wordcount/job.toml", "-p", "guest=assemblyscript"},
		{"examples/polyglot/job.toml"},
		{"examples/polyglot/job.toml", "-p", "splitter=assemblyscript", "-p", "counter=go"},
	} {
		name := strings.Join(args, " ")
		argv := append([]string{"run", abs(t, args[0]), "--progress", "none", "-c", "partitions=3"}, args[1:]...)
		code, stdout, stderr := run(t, argv...)
		if code != 0 {
			t.Errorf("%s: exit %d: %s", name, code, stderr)
			continue
		}
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		slices.Sort(lines)
		outputs[name] = strings.Join(lines, "\n")
	}
	want := outputs["examples/wordcount/job.toml -p guest=go"]
	if !strings.Contains(want, "the\t32") {
		t.Fatalf("go guest output lacks the\\t32")
	}
	for name, got := range outputs {
		if got != want {
			t.Errorf("%s: output differs from the go guest's", name)
		}
	}
}

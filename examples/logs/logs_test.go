package logs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/jobspec"
)

// TestJobIsTheSpec: the job Job builds with the SDK is the job of
// job.toml: the same source, steps, modules and sink.
func TestJobIsTheSpec(t *testing.T) {
	spec, err := jobspec.Load("job.toml", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	text, err := Job(Config{Dir: "."}).Spec()
	if err != nil {
		t.Fatal(err)
	}
	built, err := jobspec.Parse([]byte(text), spec.File, nil, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if built.Name != spec.Name {
		t.Errorf("name %q, job.toml's %q", built.Name, spec.Name)
	}
	built.Source.Line, spec.Source.Line = 0, 0
	if !reflect.DeepEqual(built.Source, spec.Source) {
		t.Errorf("source %+v, job.toml's %+v", built.Source, spec.Source)
	}
	steps := func(s *jobspec.Spec) []jobspec.Step {
		var out []jobspec.Step
		for _, st := range s.Steps {
			st.Line = 0
			out = append(out, st)
		}
		return out
	}
	if !reflect.DeepEqual(steps(built), steps(spec)) {
		t.Errorf("steps %+v, job.toml's %+v", steps(built), steps(spec))
	}
	built.Sink.Line, spec.Sink.Line = 0, 0
	if built.Sink != spec.Sink || spec.Sink.Take != Top {
		t.Errorf("sink %+v, job.toml's %+v (take %d)", built.Sink, spec.Sink, Top)
	}
	modules := func(s *jobspec.Spec) map[string]string {
		out := map[string]string{}
		for _, m := range s.Modules {
			out[m.Name] = fmt.Sprintf("dir %q go %q path %q", m.Dir, m.GoDir, m.Path)
		}
		return out
	}
	if !reflect.DeepEqual(modules(built), modules(spec)) {
		t.Errorf("modules %v, job.toml's %v", modules(built), modules(spec))
	}
}

// TestSampleIsGenerated: data/access.log is what the command in its
// README writes, so that it can be made again.
func TestSampleIsGenerated(t *testing.T) {
	committed, err := os.ReadFile(filepath.Join("data", "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Generate(&b, 300, 1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), committed) {
		t.Fatal("data/access.log is not Generate(300 lines, seed 1): go run ./examples/logs/cmd/logs gen -n 300 -seed 1 examples/logs/data/access.log")
	}
}

func TestGenerate(t *testing.T) {
	gen := func(n int, seed uint64) string {
		var b bytes.Buffer
		if err := Generate(&b, n, seed); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	a := gen(20_000, 7)
	if a != gen(20_000, 7) {
		t.Fatal("two runs with one seed differ")
	}
	if a == gen(20_000, 8) {
		t.Fatal("two seeds give the same lines")
	}
	if got := strings.Count(a, "\n"); got != 20_000 {
		t.Fatalf("%d lines, want 20000", got)
	}
	for _, status := range []string{"200", "301", "304", "404", "500"} {
		if n := strings.Count(a, `" `+status+` `); n < 20 {
			t.Errorf("status %s: %d lines", status, n)
		}
	}
	// Skewed popularity: the home page, the most popular path, has about
	// one request in six (1/H(120)); the least popular paths a few each.
	home := strings.Count(a, `"GET / `) + strings.Count(a, `"GET /?`)
	if home < 2500 || home > 4000 {
		t.Errorf("%d requests of /, want about 3000 of 20000", home)
	}
	// About one line in a hundred is malformed; these kinds are easy to
	// count.
	if n := strings.Count(a, "\n\n") + strings.Count(a, `"-" 408`) + strings.Count(a, `"\x16`); n < 20 || n > 150 {
		t.Errorf("%d empty, 408 or TLS lines, want about 100", n)
	}
	if n := strings.Count(a, "?"); n < 1000 {
		t.Errorf("%d question marks, want query strings", n)
	}
}

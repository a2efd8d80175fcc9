package jobspec

import (
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/planner"
)

// TestNamedDatasets: named datasets read by joins, unions and dataset
// sources, cached or not, and the mistakes a spec can make with them.
func TestNamedDatasets(t *testing.T) {
	const head = `name = "pr"
[modules.pr]
path = "pr.wasm"
`
	const links = `
[datasets.links]
source = { text = "/edges.txt" }
steps = [{ map = "pr.edge" }, { group_by_key = true }]
cache = true
`
	ok := []struct {
		name, text string
		check      func(*Spec) string
	}{
		{"main chain from a cached dataset", head + `
[source]
dataset = "links"
[[steps]]
map_values = "pr.first"
[[steps]]
join = "links"
[[steps]]
key_by = "pr.dst"
[sink]
text = "-"
` + links, func(s *Spec) string {
			if s.Source.Kind != "dataset" || s.Source.Dataset != "links" || !s.Datasets["links"].Cache {
				return "source or cache not read"
			}
			if s.Steps[0].Op != planner.OpMapValues || s.Steps[2].Op != planner.OpKeyBy {
				return "map_values/key_by not read"
			}
			return ""
		}},
		{"a dataset written as it is", head + `
[source]
dataset = "links"
[sink]
text = "-"
` + links, func(s *Spec) string {
			if len(s.Steps) != 0 {
				return "steps appeared"
			}
			return ""
		}},
		{"datasets reading datasets, cache from a parameter", head + `
[params]
cache = "false"
[source]
text = "/a"
[[steps]]
union = "b"
[sink]
text = "-"
[datasets.b]
source = { dataset = "c" }
steps = [{ join = "c" }]
[datasets.c]
source = { text = "/c" }
cache = "${cache}"
`, func(s *Spec) string {
			if s.Datasets["c"].Cache {
				return "cache = \"false\" read as true"
			}
			return ""
		}},
	}
	for _, tt := range ok {
		s, err := Parse([]byte(tt.text), "job.toml", nil, nil)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if msg := tt.check(s); msg != "" {
			t.Errorf("%s: %s", tt.name, msg)
		}
	}
	bad := []struct{ name, text, want string }{
		{"unknown dataset source", head + `
[source]
dataset = "linkz"
[[steps]]
map = "pr.x"
[sink]
text = "-"
` + links, `job.toml:6: source.dataset = "linkz": no [datasets.linkz]; datasets are: links (did you mean "links"?)`},
		{"dataset source with a glob", head + `
[source]
dataset = "links"
text = "/x"
[sink]
text = "-"
` + links, `job.toml:6: a source with dataset = "NAME" reads that dataset and nothing else: remove its other keys`},
		{"a circle", head + `
[source]
dataset = "a"
[sink]
text = "-"
[datasets.a]
source = { dataset = "b" }
[datasets.b]
source = { text = "/b" }
steps = [{ union = "a" }]
`, `job.toml:9: datasets a → b → a read each other in a circle: a dataset cannot read itself`},
		{"cache not a bool", head + `
[source]
dataset = "links"
[sink]
text = "-"
` + strings.Replace(links, "cache = true", "cache = 1", 1), `job.toml:10: datasets.links.cache must be true or false, not 1`},
		{"unused", head + `
[source]
text = "/a"
[[steps]]
map = "pr.x"
[sink]
text = "-"
` + links, `job.toml:12: datasets.links is never used: read it with join = "links", union = "links" or a source with dataset = "links", or remove it`},
	}
	for _, tt := range bad {
		_, err := Parse([]byte(tt.text), "job.toml", nil, nil)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s:\n got %v\nwant %s", tt.name, err, tt.want)
		}
	}
}

package jobspec

import (
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// TestQuoteTOML checks that a quoted value decodes back to itself and spans
// the requested number of lines.
func TestQuoteTOML(t *testing.T) {
	values := []string{
		"", "plain", `a "quoted" word`, `back\slash`, `\`, `ends with \`, "new\nline",
		"\r\n\t\b\f", "\x00\x01\x1f\x7f", `"""`, `'''`, "ünïcödé ✓", "$${x}", `\"`,
	}
	for _, v := range values {
		for _, lines := range []int{0, 1, 3} {
			q := quoteTOML(v, lines)
			if got := strings.Count(q, "\n"); got != lines {
				t.Errorf("quoteTOML(%q, %d) = %q spans %d line breaks", v, lines, q, got)
			}
			doc := "a = " + q + "\nb = 1\n"
			var m struct {
				A string `toml:"a"`
				B int    `toml:"b"`
			}
			if err := toml.Unmarshal([]byte(doc), &m); err != nil {
				t.Errorf("quoteTOML(%q, %d) = %q: %v", v, lines, q, err)
				continue
			}
			if m.A != v || m.B != 1 {
				t.Errorf("quoteTOML(%q, %d) = %q decodes to %q", v, lines, q, m.A)
			}
		}
	}
}

func TestScanRefs(t *testing.T) {
	for in, want := range map[string][]string{
		"":                   nil,
		"${a}":               {"a"},
		"x${a}y${b-2}z${_c}": {"a", "b-2", "_c"},
		"$${a}":              nil,
		"$$$${a}":            nil,
		"$$${a}":             {"a"},
		"${a} $x ${b}":       {"a"}, // stops at the lone $
	} {
		got := refNames(in)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("refNames(%q) = %q, want %q", in, got, want)
		}
	}
}

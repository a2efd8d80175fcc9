package jobspec

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is a problem with a job spec or with the command-line pairs given
// with it. It renders as "file:line:col: msg", leaving out what is unknown;
// errors about the command line have no File and render as Msg alone.
type Error struct {
	File string // the spec file as named by the caller, or "" for command-line errors
	Line int    // 1-based, or 0 if unknown
	Col  int    // 1-based byte column, or 0 if unknown
	Msg  string // lowercase, says what is wrong and how to fix it
	Err  error  // the underlying error (a file-system error, say), or nil
}

// Error implements error.
func (e *Error) Error() string {
	if e.File == "" {
		return e.Msg
	}
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
		if e.Col > 0 {
			b.WriteString(":" + strconv.Itoa(e.Col))
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

// suggest returns the candidate closest to word by edit distance, ignoring
// case, "_" and "-", or "" when none is close enough to be a likely typo.
func suggest(word string, candidates []string) string {
	w := normalizeName(word)
	best, bestDist := "", -1
	for _, c := range candidates {
		if c == word {
			continue
		}
		d := editDistance(w, normalizeName(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := max(1, utf8.RuneCountInString(w)/3)
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

func normalizeName(s string) string {
	s = strings.ToLower(s)
	return strings.NewReplacer("_", "", "-", "").Replace(s)
}

// editDistance is the optimal string alignment distance between a and b, in
// runes: the Levenshtein distance where swapping two adjacent runes ("nmae")
// also counts as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// didYouMean renders a suggestion as `; did you mean "x"?`, or "".
func didYouMean(word string, candidates []string) string {
	if s := suggest(word, candidates); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}

// article prefixes a TOML type name with "a" or "an".
func article(noun string) string {
	if noun != "" && strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}

// tomlKind names the TOML type of a decoded value, with its article.
func tomlKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return "a date or time"
	}
}

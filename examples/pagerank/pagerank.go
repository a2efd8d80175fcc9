// Package pagerank holds the logic of the PageRank example, as Spark's
// SparkPageRank computes it: links are the distinct edges grouped by
// source page and cached; every page with out-links starts at rank 1;
// each iteration joins the ranks with the links, sends each page's rank
// in equal parts along its out-links, and sets each page that received
// something to 0.15 + 0.85 × the sum. Ranks travel between steps as the 8
// bytes of their float64 (exact, and cheap to read and write: decimal text
// made the guest spend most of an iteration formatting and parsing), and
// are written as the shortest decimal that reads back to the same float64
// at the end. The guest in guest/go registers the functions; Reference
// computes the same thing natively.
package pagerank

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"

	guest "github.com/wasmgrid/wasmgrid/sdk/guest/go"
)

// Edge maps a line "src dst" to (src, dst); a line without two fields
// becomes an edge from "" to "" that Malformed filters out.
func Edge(_, line []byte) (k, v []byte) {
	f := bytes.Fields(line)
	if len(f) < 2 {
		return nil, nil
	}
	return f[0], f[1]
}

// WellFormed keeps the edges whose pages have names.
func WellFormed(k, v []byte) bool { return len(k) > 0 && len(v) > 0 }

// FirstRank is every page's rank before the first iteration: 1.
func FirstRank(k, _ []byte) (key, v []byte) { return k, encode(1) }

// Contribs reads a joined (page, [rank, [dst...]]) record and sends
// rank/len(dsts) to each destination.
func Contribs(_, value []byte, emit func(k, v []byte)) {
	pair, err := guest.Grouped(value)
	if err != nil || len(pair) != 2 {
		panic(fmt.Sprintf("pagerank: a joined value is not [rank, links]: %v", err))
	}
	rank := parse(pair[0])
	dsts, err := guest.Grouped(pair[1])
	if err != nil {
		panic(fmt.Sprintf("pagerank: links are not grouped values: %v", err))
	}
	share := encode(rank / float64(len(dsts)))
	for _, d := range dsts {
		emit(d, share)
	}
}

// Sum adds two ranks.
func Sum(a, b []byte) []byte { return encode(parse(a) + parse(b)) }

// Damp turns the sum of a page's contributions into its rank.
func Damp(k, v []byte) (key, value []byte) { return k, encode(0.15 + 0.85*parse(v)) }

// Format writes a rank as the shortest decimal that reads back to it: the
// job's output.
func Format(k, v []byte) (key, value []byte) {
	return k, strconv.AppendFloat(nil, parse(v), 'g', -1, 64)
}

// encode writes a rank as the 8 bytes of its float64, little-endian.
func encode(r float64) []byte { return binary.LittleEndian.AppendUint64(nil, math.Float64bits(r)) }

func parse(b []byte) float64 {
	if len(b) != 8 {
		panic(fmt.Sprintf("pagerank: %q is not a rank (8 bytes)", b))
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

// Register registers the guest functions under the names the job uses.
func Register() {
	guest.Map("edge", Edge)
	guest.Filter("well_formed", WellFormed)
	guest.Map("first_rank", FirstRank)
	guest.FlatMapPairs("contribs", Contribs)
	guest.Reduce("sum", Sum)
	guest.Map("damp", Damp)
	guest.Map("format", Format)
}

// Reference computes the ranks natively, the way the job does.
func Reference(edges io.Reader, iterations int) (map[string]float64, error) {
	links := map[string][]string{}
	seen := map[[2]string]bool{}
	sc := bufio.NewScanner(edges)
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 2 {
			continue
		}
		e := [2]string{string(f[0]), string(f[1])}
		if !seen[e] {
			seen[e] = true
			links[e[0]] = append(links[e[0]], e[1])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	ranks := map[string]float64{}
	for src := range links {
		ranks[src] = 1
	}
	for range iterations {
		sums := map[string]float64{}
		for src, r := range ranks {
			dsts := links[src]
			for _, d := range dsts {
				sums[d] += r / float64(len(dsts))
			}
		}
		ranks = map[string]float64{}
		for p, s := range sums {
			ranks[p] = 0.15 + 0.85*s
		}
	}
	return ranks, nil
}

// Graph writes a synthetic link graph of pages nodes to w, one "src dst"
// line per edge: page i links to 1-8 pages picked with a bias towards
// low numbers (so some pages are popular), a few pages link nowhere, and
// some edges repeat. The same seed gives the same graph.
func Graph(w io.Writer, pages int, seed uint64) error {
	bw := bufio.NewWriter(w)
	s := seed
	next := func() uint64 {
		s += 0x9e3779b97f4a7c15
		z := s
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
	for i := range pages {
		if next()%20 == 0 {
			continue // a dangling page: no out-links
		}
		out := 1 + int(next()%8)
		for range out {
			u := float64(next()>>11) / (1 << 53)
			dst := int(math.Floor(float64(pages) * u * u))
			fmt.Fprintf(bw, "page%d page%d\n", i, dst)
		}
	}
	return bw.Flush()
}

// Pages lists a rank table's pages in order.
func Pages(ranks map[string]float64) []string {
	pages := make([]string, 0, len(ranks))
	for p := range ranks {
		pages = append(pages, p)
	}
	slices.Sort(pages)
	return pages
}

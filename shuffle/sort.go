package shuffle

import (
	"bytes"
	"cmp"
	"slices"
)

// sort sorts the entries by (partition, key), stable for equal keys.
//
// An LSD radix sort orders them by (partition, prefix), which is stable, so
// entries with equal keys stay in the order of Add (compacted records come
// first, as they were added first). Only runs of equal (partition, prefix)
// whose keys differ past their prefix then need a comparison sort. Shuffle
// data has many equal keys, which a comparison sort with a stability
// tie-break handles badly. The radix sort needs a scratch copy of the
// entries, another 24 bytes per record while it runs.
func (w *Writer) sort() {
	if len(w.entries) < 2 {
		return
	}
	w.entries, _ = radixSort(w.entries, make([]entry, len(w.entries)))
	ents := w.entries
	for i := 0; i < len(ents); {
		j := i + 1
		for j < len(ents) && ents[j].part == ents[i].part && ents[j].prefix == ents[i].prefix {
			j++
		}
		if j-i > 1 {
			w.sortRun(ents[i:j])
		}
		i = j
	}
}

// sortRun sorts a run of entries of equal (partition, prefix) by key, stable.
func (w *Writer) sortRun(run []entry) {
	sorted := true
	for k := 1; k < len(run) && sorted; k++ {
		sorted = w.compareKeys(run[k-1], run[k]) <= 0
	}
	if sorted {
		return
	}
	// pdqsort, then restore the order of Add within each run of equal keys.
	slices.SortFunc(run, w.compareKeys)
	for i := 0; i < len(run); {
		j := i + 1
		for j < len(run) && w.compareKeys(run[i], run[j]) == 0 {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(run[i:j], byOffset)
		}
		i = j
	}
}

// compareKeys orders entries by (partition, key).
func (w *Writer) compareKeys(a, b entry) int {
	if a.part != b.part {
		return cmp.Compare(a.part, b.part)
	}
	if a.prefix != b.prefix {
		return cmp.Compare(a.prefix, b.prefix)
	}
	if a.klen <= 8 && b.klen <= 8 {
		// Equal zero-padded prefixes: the shorter key is the smaller one.
		return cmp.Compare(a.klen, b.klen)
	}
	return bytes.Compare(w.key(a)[min(a.klen, 8):], w.key(b)[min(b.klen, 8):])
}

func byOffset(a, b entry) int { return cmp.Compare(a.off, b.off) }

// radixDigits is the number of byte digits of (partition, prefix): 8 of
// prefix, then 3 of partition (partitions < 1<<20).
const radixDigits = 11

func digit(e *entry, d int) byte {
	if d < 8 {
		return byte(e.prefix >> (8 * d))
	}
	return byte(e.part >> (8 * (d - 8)))
}

// radixSort sorts src by (partition, prefix), stable, using tmp (as long as
// src) as scratch space. It returns the sorted slice and the other one.
func radixSort(src, tmp []entry) (sorted, scratch []entry) {
	var counts [radixDigits][256]int
	for i := range src {
		e := &src[i]
		for d := range radixDigits {
			counts[d][digit(e, d)]++
		}
	}
	for d := range radixDigits {
		c := &counts[d]
		if c[digit(&src[0], d)] == len(src) {
			continue // every entry has the same digit: nothing to do
		}
		var pos [256]int
		sum := 0
		for b := range 256 {
			pos[b], sum = sum, sum+c[b]
		}
		for i := range src {
			b := digit(&src[i], d)
			tmp[pos[b]] = src[i]
			pos[b]++
		}
		src, tmp = tmp, src
	}
	return src, tmp
}

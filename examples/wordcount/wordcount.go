package wordcount

import "strconv"

// one is the count every word starts with.
var one = []byte("1")

// Split emits (word, "1") for every word of line. A word is a maximal run of
// ASCII letters and digits, lowercased; every other byte separates words.
func Split(line []byte, emit func(k, v []byte)) {
	var lower []byte
	for i := 0; i < len(line); {
		for i < len(line) && !isWordByte(line[i]) {
			i++
		}
		start, upper := i, false
		for i < len(line) && isWordByte(line[i]) {
			upper = upper || ('A' <= line[i] && line[i] <= 'Z')
			i++
		}
		if start == i {
			continue
		}
		word := line[start:i]
		if upper {
			lower = lower[:0]
			for _, c := range word {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				lower = append(lower, c)
			}
			word = lower
		}
		emit(word, one)
	}
}

func isWordByte(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// Sum adds two decimal counts. It reuses a's storage for the result.
func Sum(a, b []byte) []byte {
	x, err := strconv.ParseUint(string(a), 10, 64)
	if err != nil {
		panic("sum: value is not a decimal count: " + strconv.Quote(string(a)))
	}
	y, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		panic("sum: value is not a decimal count: " + strconv.Quote(string(b)))
	}
	return strconv.AppendUint(a[:0], x+y, 10)
}

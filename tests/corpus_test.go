package tests

import (
	"bufio"
	"math/rand/v2"
	"os"
	"strings"
)

// writeCorpus writes about size bytes of text to path: words from a large
// vocabulary with a Zipf-like skew (so that some words repeat millions of
// times and many occur once), mixed case, digits, punctuation, non-ASCII
// bytes, CRLF line ends, empty lines, and a few very long lines.
func writeCorpus(path string, size int64, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	vocab := make([]string, 300_000)
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	for i := range vocab {
		n := 1 + rng.IntN(12)
		if i%1000 == 0 {
			n = 40 + rng.IntN(200) // some very long words
		}
		var b strings.Builder
		for range n {
			b.WriteByte(letters[rng.IntN(len(letters))])
		}
		vocab[i] = b.String()
	}
	zipf := rand.NewZipf(rand.New(rand.NewPCG(seed+1, seed+2)), 1.1, 4, uint64(len(vocab)-1))
	seps := []string{" ", " ", " ", "  ", ", ", ". ", "\t", "-", "'", " — ", " é ", "\x00", "!? "}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var written int64
	line := 0
	for written < size {
		line++
		words := 1 + rng.IntN(20)
		switch {
		case line%20_000 == 0:
			words = 400_000 // a line of a few MB
		case line%97 == 0:
			words = 0 // an empty line
		}
		for i := range words {
			if i > 0 {
				s := seps[rng.IntN(len(seps))]
				w.WriteString(s)
				written += int64(len(s))
			}
			wd := vocab[zipf.Uint64()]
			w.WriteString(wd)
			written += int64(len(wd))
		}
		eol := "\n"
		if line%13 == 0 {
			eol = "\r\n"
		}
		w.WriteString(eol)
		written += int64(len(eol))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

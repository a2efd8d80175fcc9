// Command terasort generates Sort Benchmark input and validates sorted
// output, as gensort and valsort do (examples/terasort/sortbench).
//
//	terasort gen -n 10000000 [-files 8] [-ascii] DIR   # 1 GB in DIR/in-NNNNN
//	terasort validate [-checksum HEX] DIR|FILE...      # part-* of DIR in name order
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/wasmgrid/wasmgrid/examples/internal/excmd"
	"github.com/wasmgrid/wasmgrid/examples/terasort/sortbench"
)

func main() {
	excmd.Subcommands("terasort", usage, map[string]func([]string) error{"gen": gen, "validate": validate})
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: terasort gen -n RECORDS [-files K] [-ascii] DIR | terasort validate [-checksum HEX] DIR|FILE...")
	os.Exit(2)
}

// gen writes n records as K files of consecutive record numbers, and
// prints their checksum.
func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	n := fs.Uint64("n", 1_000_000, "records (100 bytes each)")
	files := fs.Int("files", 4, "files to spread them over")
	ascii := fs.Bool("ascii", false, "ASCII records (gensort -a): printable keys, lines ending in \\r\\n")
	fs.Parse(args)
	if fs.NArg() != 1 || *files < 1 {
		usage()
	}
	sum, err := sortbench.GenerateFiles(fs.Arg(0), *n, *files, *ascii)
	if err != nil {
		return err
	}
	fmt.Printf("records: %d\nchecksum: %s\n", *n, sum)
	return nil
}

// validate checks that the records are in key order and, with -checksum,
// that they are the records generated.
func validate(args []string) error {
	fs := flag.NewFlagSet("validate", flag.ExitOnError)
	want := fs.String("checksum", "", "the checksum gen printed")
	fs.Parse(args)
	if fs.NArg() < 1 {
		usage()
	}
	files := fs.Args()
	if fi, err := os.Stat(files[0]); err == nil && fi.IsDir() && len(files) == 1 {
		m, err := filepath.Glob(filepath.Join(files[0], "part-*"))
		if err != nil {
			return err
		}
		sort.Strings(m)
		files = m
	}
	s, err := sortbench.ValidateFiles(files)
	if err != nil {
		return err
	}
	fmt.Printf("records: %d\nchecksum: %s\nduplicate keys: %d\n", s.Records, s.Checksum, s.Duplicates)
	if s.Unordered > 0 {
		return fmt.Errorf("%d records out of order, the first is record %d", s.Unordered, s.FirstUnordered)
	}
	if *want != "" && s.Checksum.String() != *want {
		return fmt.Errorf("checksum %s, want %s: records were lost, added or changed", s.Checksum, *want)
	}
	fmt.Println("SUCCESS - all records are in order")
	return nil
}

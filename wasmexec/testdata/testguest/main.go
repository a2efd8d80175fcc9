// Command testguest is a guest module for wasmexec's tests: well-behaved
// functions and hostile ones.
package main

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"time"

	guest "github.com/wasmgrid/wasmgrid/sdk/guest/go"
)

var sink [][]byte

func init() {
	guest.Map("upper", func(k, v []byte) ([]byte, []byte) { return bytes.ToUpper(k), bytes.ToUpper(v) })
	guest.Map("swap", func(k, v []byte) ([]byte, []byte) { return v, k })
	guest.FlatMapPairs("explode", func(k, v []byte, emit func(k, v []byte)) {
		n, _ := strconv.Atoi(string(v))
		for i := 0; i < n; i++ {
			emit(k, []byte(strconv.Itoa(i)))
		}
	})
	guest.Filter("nonempty", func(k, v []byte) bool { return len(v) > 0 })
	guest.Reduce("concat", func(a, b []byte) []byte { return append(append(a, '+'), b...) })
	guest.Map("fail", func(k, v []byte) ([]byte, []byte) { panic("fail: refusing record " + string(k)) })
	guest.Map("exit", func(k, v []byte) ([]byte, []byte) {
		os.Stderr.WriteString("about to exit\n")
		os.Exit(3)
		return nil, nil
	})
	guest.Map("loop", func(k, v []byte) ([]byte, []byte) {
		for i := 0; ; i++ {
			if i < 0 {
				return k, v
			}
		}
	})
	guest.Map("bomb", func(k, v []byte) ([]byte, []byte) {
		for {
			sink = append(sink, make([]byte, 1<<20))
		}
	})
	// fillbomb is bomb that also writes every page it gets, so that the
	// memory is resident, as a real program's would be.
	guest.Map("fillbomb", func(k, v []byte) ([]byte, []byte) {
		for {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			sink = append(sink, b)
		}
	})
}

func main() {}

// The sandbox is deterministic: the clock and the random source a guest
// sees are the same on every run.
func init() {
	guest.Map("now", func(k, _ []byte) ([]byte, []byte) {
		return k, []byte(fmt.Sprint(time.Now().UnixNano(), " ", rand.Int63(), " ", len(os.Environ()), " ", len(os.Args)))
	})
	guest.Map("readfile", func(k, _ []byte) ([]byte, []byte) {
		_, err := os.ReadFile("/etc/passwd")
		return k, []byte(fmt.Sprint(err != nil))
	})
}

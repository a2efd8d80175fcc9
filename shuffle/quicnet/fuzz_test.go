package quicnet

import (
	"bytes"
	"testing"

	"github.com/wasmgrid/wasmgrid/shuffle"
)

func FuzzRequest(f *testing.F) {
	for _, r := range []request{
		{job: "j", token: "t", blocks: []BlockReq{{ID: shuffle.MapOutputID{ShuffleID: 1, MapIndex: 2, Attempt: 3}, Partition: 4}}},
		{job: "../x", blocks: make([]BlockReq, 3)},
	} {
		b, err := appendRequest(nil, r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("WGBT\x01\x00\x00\x00\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rd := bytes.NewReader(b)
		req, err := readRequest(rd)
		if err != nil {
			return
		}
		if len(req.job) > maxJobLen || len(req.token) > maxTokenLen || len(req.blocks) == 0 || len(req.blocks) > maxBlocks {
			t.Fatalf("out of bounds: %d, %d, %d", len(req.job), len(req.token), len(req.blocks))
		}
		used := len(b) - rd.Len()
		if used > maxRequestSize {
			t.Fatalf("read %d bytes", used)
		}
		again, err := appendRequest(nil, req)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b[:used]) {
			t.Fatalf("re-encoded differs")
		}
	})
}

//go:build wasip1

package guest

import (
	"runtime"
	"unsafe"
)

// The exports of guest ABI v1 (docs/abi.md), served from the package-level
// registry. Each export that runs user code yields to the Go scheduler before
// it returns: the runtime's GC workers only run when the guest yields, and
// without this the guest heap grows on every call until it traps.

var input []byte

//go:wasmexport wasmgrid_abi_version
func wasmgridABIVersion() int32 { return ABIVersion }

//go:wasmexport wasmgrid_describe
func wasmgridDescribe() int64 {
	output = defaultRegistry.Manifest()
	return pack(output)
}

//go:wasmexport wasmgrid_alloc
func wasmgridAlloc(n int32) int32 {
	if n < 0 {
		return 0
	}
	if cap(input) < int(n) || cap(input) == 0 {
		input = make([]byte, max(int(n), 64))
	}
	input = input[:cap(input)]
	return int32(uintptr(unsafe.Pointer(&input[0])))
}

var output []byte

//go:wasmexport wasmgrid_run
func wasmgridRun(ptr, n int32) int32 {
	// The host writes calls into the buffer that wasmgrid_alloc returned;
	// taking the call from that buffer, rather than from a raw address,
	// keeps Go's pointer rules intact.
	var status int32
	var out []byte
	if len(input) == 0 || ptr != int32(uintptr(unsafe.Pointer(&input[0]))) || n < 0 || int(n) > len(input) {
		status, out = StatusBadCall, []byte("wasmgrid_run: the call is not in the buffer returned by wasmgrid_alloc")
	} else {
		status, out = defaultRegistry.Run(input[:n])
	}
	output = out
	runtime.Gosched()
	return status
}

//go:wasmexport wasmgrid_output
func wasmgridOutput() int64 { return pack(output) }

func pack(b []byte) int64 {
	if len(b) == 0 {
		return 0
	}
	return int64(uintptr(unsafe.Pointer(&b[0])))<<32 | int64(len(b))
}

// Package api holds the types that cross wasmgrid's HTTP API as JSON
// (docs/api.md): requests, responses, server-sent events, the error body
// and the roles of tokens. The coordinator (package grid) encodes them,
// and clients (package sdk, the grid command, programs of their own)
// decode them; it has no behaviour and imports only the standard library,
// so that a client never links the server.
//
// Field names are snake_case, durations are integer nanoseconds in
// fields whose names end in _ns, and sizes in bytes end in _bytes unless
// the name says its unit (mem_mib, cpu_millis). A field may be added in
// version 1; none is renamed or removed.
package api

// Package quicnet moves shuffle blocks between agents over QUIC. Every agent
// runs a Server that serves the map outputs under its shuffle directory, and
// a reduce task reads its blocks through a Fetcher, one connection per agent
// and one stream per request, decoding them with shuffle.NewBlockDecoder so
// every checksum is verified while the reducer reads.
//
// It is the only package of wasmgrid that imports quic-go. The wire protocol
// is described in docs/shuffle.md, "Block transport".
package quicnet

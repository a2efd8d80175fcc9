// Package tokens is the coordinator's store of API tokens: the bootstrap
// tokens of a server's config layered over the records that the
// replicated log creates and revokes, looked up by hash in constant time.
// The store changes only by applying Commands, which grid commits to the
// log and puts in its snapshots; it keeps hashes, never tokens.
package tokens

// Package storage is where jobs read their inputs and write their
// outputs: named volumes that the operator defines and grants to tenants,
// each a directory tree (file://) or a prefix of an S3-compatible bucket
// (s3://). Resolve turns a location as a job spec writes it ("vol:path",
// an s3:// URL, an absolute path) into a Ref inside one of the tenant's
// volumes, refusing every way out by name; a Store reads and writes a
// volume's files without ever leaving it (a file volume goes through
// os.Root, so a symbolic link cannot lead out either); and Output commits
// a job's result atomically (a job-private staging area, a _SUCCESS
// manifest written last, overwrite only of the same tenant's output).
//
// An s3 volume (OpenS3) is the keys of a bucket under a prefix, on AWS or
// any S3-compatible server (Volume.Endpoint: http://host:port is plain
// HTTP, https://host:port or host:port is TLS), signed with the volume's
// static keys. A name is the key prefix/name; every request stays under
// prefix/. Globs list from the pattern's literal prefix and match each
// element; Open is one ranged GET, resumed at its offset (same ETag) when
// the connection breaks; Create streams into one multipart upload (one
// 16 MiB part in memory per writer) that appears whole on Commit and is
// aborted on Abort; Rename and Truncate copy on the server. S3 cannot move
// a directory, so Output commits part by part with _SUCCESS written last.
// docs/storage.md maps each operation to its requests; the tests run
// against a real server (package s3test).
//
// The agents and the coordinator act for a tenant with their own rights:
// this package is the line between what a tenant names and what the hosts
// hold.
package storage

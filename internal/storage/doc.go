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
// The agents and the coordinator act for a tenant with their own rights:
// this package is the line between what a tenant names and what the hosts
// hold.
package storage

// Package jobspec turns a job spec file (TOML) plus the command line's
// --param name=value and --conf key=value pairs into a validated *Spec, or
// into an *Error that names the file, the line, what is wrong and what would
// fix it.
//
// Parse is pure: it reads no files and starts nothing, so a job never starts
// from a spec that is not valid. (*Spec).Check then looks at the world (input
// files, modules, the output directory) before anything is submitted. The
// format is documented in docs/jobspec.md.
//
// (*Spec).Lower turns a spec into the planner's logical DAG (planner.Job):
// sources become splits, named datasets are computed where they are read,
// aggregate_by_key becomes two datasets. It is pure but for the Inputs it
// is given, which find the files that sources name (storage.Finder reads
// a tenant's volumes); a step's operator is a planner.Op, so the spec and
// the planner share one enum of operators.
package jobspec

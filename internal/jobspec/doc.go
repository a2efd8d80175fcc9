// Package jobspec turns a job spec file (TOML) plus the command line's
// --param name=value and --conf key=value pairs into a validated *Spec, or
// into an *Error that names the file, the line, what is wrong and what would
// fix it.
//
// Parse is pure: it reads no files and starts nothing, so a job never starts
// from a spec that is not valid. (*Spec).Check then looks at the world (input
// files, modules, the output directory) before anything is submitted. The
// format is documented in docs/jobspec.md.
package jobspec

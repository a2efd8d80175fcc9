// Package executor runs one task attempt: it reads the task's input (a
// split of a text file, or its partition of a parent's shuffle output merged
// in key order), pushes it through the stage's pipeline of guest functions
// in wasmexec, and writes the output (sorted, combined shuffle blocks, or a
// text part file for the sink). It turns every failure into a planner
// Failure that says whether a retry, a map rerun or nothing can help.
//
// Today the agent calls it in-process; it is the seam where executor child
// processes come in, so a task is described by data alone (Task).
package executor

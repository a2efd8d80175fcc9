// Package planner turns a job's logical DAG of datasets into a physical plan
// of stages and drives it with a job scheduler, as Spark's DAGScheduler does.
//
// Build cuts the DAG at shuffle dependencies and fuses the narrow operators
// between them into one pipeline per stage. A Scheduler then decides which
// task runs next, retries failed attempts, refuses stale ones, and reruns
// the map tasks whose outputs were lost (lineage). The package is pure: it
// is driven by calls (a task succeeded, an agent was lost) and answers with
// decisions; it opens no files and starts no goroutines.
package planner

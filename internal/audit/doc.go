// Package audit is the coordinator's audit log: one JSON line per change
// of state and per refusal the API answers, written to a file that
// rotates by size and prunes by count and age. Writer wraps a handler's
// http.ResponseWriter to learn the status, the object and the reason
// that a Record reports; grid decides who and what each record names.
package audit

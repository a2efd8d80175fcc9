// Package apilimit holds the coordinator API's budgets: each token's
// request rate and open event streams, each client address's failed
// authentications, each tenant's uploads in progress. It counts and
// says how long to wait; grid decides what to answer.
package apilimit

// Package gossip is a node's cluster membership: a serf agent on an
// encrypted keyring, the tags a node advertises, and the members it
// hears of. It is the one package that imports serf; grid starts one
// agent per coordinator server and per agent process, and reads
// addresses and roles from the members' tags.
package gossip

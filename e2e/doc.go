// Package e2e tests secbot as people meet it: a real Dendrite (and maddy,
// for email) on 127.0.0.1, secbot as its own process, reporters and the
// team as separate encrypted clients.
package e2e

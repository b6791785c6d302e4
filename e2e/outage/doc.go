// Package outage tests secbot through a homeserver outage, on a Dendrite
// of its own (stopping the shared one would disturb the other tests).
package outage

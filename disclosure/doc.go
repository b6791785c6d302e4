// Package disclosure is secbot's domain: cases, the five-step process,
// embargoes, the policy's deadlines and the escalation ladder — pure
// decisions with time passed in, no I/O.
package disclosure

// Package testclock gives the secbot process its clock, which the e2e tests
// can move forward from outside the process, so that a ladder of deadlines
// or a backoff is stepped through instead of waited out.
//
// Only a binary built with the testclock tag can be stepped. There, if
// SECBOT_TESTCLOCK names a file, the clock reads real time plus the offset
// the file holds (a Go duration such as "90s"), re-read every PollEvery:
// the test writes a larger offset, and every timer and ticker of the clock
// is re-armed at once against the new time. The clock never goes back: a
// smaller offset than the one in force is ignored. After applying an offset
// the process writes it to the file's name plus ".ack", so the test knows
// when the step has arrived; the file stays, so a restarted process goes
// on from the same offset. Writers replace the files by rename, so a reader
// never sees half an offset.
//
// In a release build New returns the real clock and reads no variable and
// no file: nothing outside the process can move its time.
package testclock

import "time"

// Env names the file that holds the offset.
const Env = "SECBOT_TESTCLOCK"

// AckSuffix is added to the offset file's name for the process's answer.
const AckSuffix = ".ack"

// PollEvery is how often a stepped process reads the offset file.
const PollEvery = 10 * time.Millisecond

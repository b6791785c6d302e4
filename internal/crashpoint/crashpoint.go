// Package crashpoint lets the crash tests stop secbot at a named point, as
// abruptly as SIGKILL would, to prove that no point loses or doubles work.
//
// Only a binary built with the crashpoints tag can crash: there,
// SECBOT_CRASHPOINT names the point, and the process exits with status 137
// the first time it is reached. In a release build Hit does nothing, so a
// stray variable cannot stop production.
package crashpoint

// Env is the environment variable that names the crash point.
const Env = "SECBOT_CRASHPOINT"

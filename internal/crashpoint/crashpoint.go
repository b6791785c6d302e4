// Package crashpoint lets the crash tests stop secbot at a named point, as
// abruptly as SIGKILL would, to prove that no point loses or doubles work.
//
// SECBOT_CRASHPOINT names the point; the process exits with status 137 the
// first time it is reached. It is unset in production, where Hit costs one
// comparison.
package crashpoint

import (
	"fmt"
	"os"
	"sync"
)

// Env is the environment variable that names the crash point.
const Env = "SECBOT_CRASHPOINT"

var armed = sync.OnceValue(func() string { return os.Getenv(Env) })

// Hit exits the process at once if name is the armed crash point.
func Hit(name string) {
	if p := armed(); p != "" && p == name {
		fmt.Fprintf(os.Stderr, "crashpoint %s reached: exiting\n", name)
		os.Exit(137)
	}
}

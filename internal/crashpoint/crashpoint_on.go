//go:build crashpoints

package crashpoint

import (
	"fmt"
	"os"
	"sync"
)

// Enabled reports whether this build can crash at a crash point.
const Enabled = true

var armed = sync.OnceValue(func() string { return os.Getenv(Env) })

// Hit exits the process at once if name is the armed crash point.
func Hit(name string) {
	if p := armed(); p != "" && p == name {
		fmt.Fprintf(os.Stderr, "crashpoint %s reached: exiting\n", name)
		os.Exit(137)
	}
}

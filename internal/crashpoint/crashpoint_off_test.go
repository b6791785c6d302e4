//go:build !crashpoints

package crashpoint

import (
	"testing"
)

// Armed or not, a release build goes past every crash point.
func TestReleaseBuildHasNoCrashPoints(t *testing.T) {
	if Enabled {
		t.Fatal("Enabled without the crashpoints tag")
	}
	t.Setenv(Env, "somewhere")
	Hit("somewhere")
	// Still running: the armed point did not exit.
}

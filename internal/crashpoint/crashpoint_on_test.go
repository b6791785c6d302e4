//go:build crashpoints

package crashpoint

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

// The test binary runs itself with the point armed and must die with 137
// there, and only there.
func TestArmedPointExits(t *testing.T) {
	if name := os.Getenv("CRASHPOINT_CHILD"); name != "" {
		Hit("elsewhere")
		Hit(name)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestArmedPointExits$")
	cmd.Env = append(os.Environ(), "CRASHPOINT_CHILD=here", Env+"=here")
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 137 {
		t.Fatalf("child ended with %v, want exit status 137", err)
	}
}

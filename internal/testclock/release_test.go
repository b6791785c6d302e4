//go:build !testclock

package testclock

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A release build ignores an offset file it is pointed at.
func TestReleaseBuildCannotBeStepped(t *testing.T) {
	if Enabled {
		t.Fatal("Enabled without the testclock tag")
	}
	file := filepath.Join(t.TempDir(), "offset")
	if err := os.WriteFile(file, []byte("240h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(Env, file)
	// A stepped build applies and answers the file before New returns.
	c := New()
	if d := c.Since(time.Now()); d < -time.Second || d > time.Second {
		t.Fatalf("the release clock is %s off real time", d)
	}
	if _, err := os.Stat(file + AckSuffix); !os.IsNotExist(err) {
		t.Fatalf("the release build answered the offset file: %v", err)
	}
}

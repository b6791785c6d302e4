package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/enarx/secbot/internal/testenv/testbed"
)

var bed *testbed.Bed

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "secbot-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	bed, err = testbed.New(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "set up the homeserver:", err)
		os.Exit(1)
	}
	code := m.Run()
	bed.Close()
	if code == 0 {
		_ = os.RemoveAll(dir)
	} else {
		fmt.Fprintln(os.Stderr, "test data kept in", dir)
	}
	os.Exit(code)
}

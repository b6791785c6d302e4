// Command install puts maddy, the test mail server, into secbot's cache if
// it is not there yet, and prints where.
package main

import (
	"fmt"
	"os"

	"github.com/enarx/secbot/internal/testenv/maddy"
)

func main() {
	exe, err := mailtest.MaddyBin()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("maddy", mailtest.MaddyVersion, "at", exe)
}

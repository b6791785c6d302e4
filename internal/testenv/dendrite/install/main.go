// Command install puts Dendrite into secbot's cache, if it is not there yet,
// and prints where.
package main

import (
	"fmt"
	"os"

	"github.com/enarx/secbot/internal/testenv/dendrite"
)

func main() {
	bin, err := matrixtest.DendriteBin()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("dendrite", matrixtest.DendriteVersion, "in", bin)
}

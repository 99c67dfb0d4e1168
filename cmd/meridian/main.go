// Command meridian is the one binary of Meridian: it runs a node (node), a
// whole local multi-region cluster (dev), and talks to a cluster (put, get,
// delete, status, ring).
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

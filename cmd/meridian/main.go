// Command meridian is the one binary of Meridian: it runs a node (node), a
// whole local multi-region cluster (dev), and talks to a cluster (put, get,
// delete, status, ring, inspect, repair, grant, revoke, grants).
//
// Exit status: 0 on success, 3 when a write may have been applied although
// it failed (client.ErrOutcomeUnknown: read the key before writing again),
// 1 on any other error.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/meridian-kv/meridian/client"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		if errors.Is(err, client.ErrOutcomeUnknown) {
			os.Exit(3)
		}
		os.Exit(1)
	}
}

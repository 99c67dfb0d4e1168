package node_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/node"
)

// TestRepairRightAfterAPeerRestarts: a node still holds its connection to
// a peer's previous process when the peer is back at once (killed and
// started again); the first request of a repair session on it meets the
// peer's stateless reset. The session runs again on a new connection, so
// the repair completes at its first run.
func TestRepairRightAfterAPeerRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east"}, nodesPerRegion: 2, replicas: 2, latency: time.Millisecond,
			tweak: func(c *node.Config) { c.Hints.Disabled = true }})
		c := tc.clientFor("east-1")
		// Every write reaches both replicas: east-1 holds a connection to
		// east-2, recently heard from.
		for _, key := range []string{"a", "b", "c"} {
			if _, err := c.Put(ctx(t), []byte(key), []byte("v"), &client.WriteOptions{Consistency: "ALL"}); err != nil {
				t.Fatal(err)
			}
		}
		// A crash: cut off first, so the closing transport's goodbyes never
		// reach east-1, which keeps the connection.
		tc.isolate("east-2")
		if err := tc.kill("east-2"); err != nil {
			t.Fatal(err)
		}
		tc.restore("east-2")
		if err := tc.start("east-2"); err != nil {
			t.Fatal(err)
		}
		res, err := c.Repair(ctx(t), nil, nil)
		if err != nil {
			t.Fatalf("the first repair after east-2 restarted: %v", err)
		}
		if !res.Done || res.RangesDone != res.RangesTotal {
			t.Fatalf("repair: %+v", *res)
		}
	})
}

package node_test

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/node"
)

// TestRestartedNodeHintsAMemberThatLeftBeforeIt: east-3 stops gracefully
// (it leaves), then east-1 restarts. East-1's gossip never lists east-3
// (serf tells a starting node nothing of a member that left), but east-1
// remembers it: its ring holds east-3, so the writes east-1 coordinates
// are hinted for east-3, and once east-3 is back hints alone bring them.
// Before, east-1's ring lacked east-3: its writes made no copy and no
// hint for it, and east-3 never got them without a repair.
func TestRestartedNodeHintsAMemberThatLeftBeforeIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east"}})
		if err := tc.stop("east-3"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() error {
			if st := tc.nodes["east-1"].PeerState("east-3"); st != node.StateLeft {
				return fmt.Errorf("east-1 sees east-3 %s", st)
			}
			return nil
		})
		if err := tc.stop("east-1"); err != nil {
			t.Fatal(err)
		}
		if err := tc.start("east-1"); err != nil {
			t.Fatal(err)
		}
		restarted := tc.nodes["east-1"]
		waitFor(t, func() error {
			if st := restarted.PeerState("east-2"); st != node.StateUp {
				return fmt.Errorf("east-1 sees east-2 %s", st)
			}
			return nil
		})
		if m := restarted.Members(); !slices.Contains(m, "east-3") {
			t.Fatalf("the restarted east-1's members %v lack east-3", m)
		}

		// Writes coordinated by east-1 alone.
		c := tc.dialOnly("east-1", client.Config{})
		var keys []string
		for i := range 20 {
			key := fmt.Sprintf("remembered-%d", i)
			if _, err := c.Put(ctx(t), []byte(key), []byte("v"), &client.WriteOptions{Consistency: "LOCAL_QUORUM"}); err != nil {
				t.Fatalf("put %s: %v", key, err)
			}
			keys = append(keys, key)
		}

		if err := tc.start("east-3"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() error {
			for id, n := range tc.nodes {
				if p := n.PendingHints()["east-3"].Count; p > 0 {
					return fmt.Errorf("%s holds %d hints for east-3", id, p)
				}
			}
			for _, key := range keys {
				o, err := tc.nodes["east-3"].Store().Get("default", []byte(key))
				if err != nil {
					return err
				}
				if o.IsEmpty() {
					return fmt.Errorf("east-3 lacks %s", key)
				}
			}
			return nil
		})
	})
}

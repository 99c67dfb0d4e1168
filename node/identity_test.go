package node_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/node"
)

// clientOf returns a client that talks to node id only.
func (tc *testCluster) clientOf(id string) *client.Client {
	tc.t.Helper()
	return tc.dialOnly(id, client.Config{})
}

// TestWipedNodeMintsNewDots is the disk-replacement defect: a node whose
// data directory was wiped must not re-mint dots other replicas hold. Its
// write after the wipe is acknowledged and must survive as a sibling of the
// value written before (the write carried no context), and the node, told
// by its peers that it replaced an earlier incarnation, gates its reads
// until repair brought its ranges back.
func TestWipedNodeMintsNewDots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, latency: 2 * time.Millisecond})
		const victim = "west-1"
		via := tc.clientOf(victim)
		key := []byte("k")
		if _, err := via.Put(ctx(t), key, []byte("v1"), &client.WriteOptions{Consistency: "ALL"}); err != nil {
			t.Fatal(err)
		}
		got, err := via.Get(ctx(t), key, &client.ReadOptions{Consistency: "ALL"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := via.Put(ctx(t), key, []byte("v2"), &client.WriteOptions{Consistency: "ALL", Context: got.Context}); err != nil {
			t.Fatal(err)
		}
		before := tc.nodes[victim].Store().Identity()

		// A disk replacement: the node dies and comes back on an empty disk.
		if err := tc.kill(victim); err != nil {
			t.Fatal(err)
		}
		if err := tc.sim.Restore(victim, vfs.NewCrashableMem()); err != nil {
			t.Fatal(err)
		}
		if err := tc.start(victim); err != nil {
			t.Fatal(err)
		}
		tc.waitConverged()
		n := tc.nodes[victim]
		if after := n.Store().Identity(); after.Incarnation == before.Incarnation {
			t.Fatalf("the wiped node kept incarnation %s", before.Incarnation)
		}
		waitFor(t, func() error {
			if !n.Gated() {
				return fmt.Errorf("%s does not gate its reads yet", victim)
			}
			return nil
		})
		// The gated node refuses to serve what it does not hold: a read that
		// needs it fails instead of answering "not found".
		if _, err := via.Get(ctx(t), key, &client.ReadOptions{Consistency: "west=3"}); err == nil || !strings.Contains(err.Error(), "has not repaired this range") {
			t.Fatalf("read needing the gated node: %v, want a refusal naming the unrepaired range", err)
		}

		waitFor(t, func() error {
			_, err := via.Put(ctx(t), key, []byte("v3"), &client.WriteOptions{Consistency: "EACH_QUORUM"})
			return err
		})
		// Peers may still hold connections to the killed process; a repair
		// that stops on one resumes when run again.
		waitFor(t, func() error {
			_, err := via.Repair(context.Background(), nil, nil)
			return err
		})
		if n.Gated() {
			t.Fatalf("%s still gated after a full repair", victim)
		}
		// Read repair and repair have had their chance to drop v3: it must be
		// a sibling of v2 on every replica.
		res, err := tc.client.Get(ctx(t), key, &client.ReadOptions{Consistency: "ALL"})
		if err != nil {
			t.Fatal(err)
		}
		vals := values(res)
		slices.Sort(vals)
		if !slices.Equal(vals, []string{"v2", "v3"}) {
			t.Fatalf("after the wipe, a read at ALL returns %v, want [v2 v3] (the acknowledged v3 was lost)", vals)
		}
		for id, nd := range tc.nodes {
			obj, err := nd.Store().Get("default", key)
			if err != nil {
				t.Fatal(err)
			}
			if len(obj.Values()) != 2 {
				t.Errorf("%s holds %d values, want 2", id, len(obj.Values()))
			}
		}
	})
}

// TestFreshClusterIsNotGated: the nodes of a new cluster all start on
// fresh directories; none of them replaced anything, so none gates.
func TestFreshClusterIsNotGated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}})
		if _, err := tc.client.Put(ctx(t), []byte("k"), []byte("v"), &client.WriteOptions{Consistency: "ALL"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() error {
			_, err := tc.client.Get(ctx(t), []byte("k"), &client.ReadOptions{Consistency: "ALL"})
			return err
		})
		for id, n := range tc.nodes {
			if n.Gated() {
				t.Errorf("%s of a new cluster gates its reads", id)
			}
		}
		// A restart on the same directory is the same incarnation.
		inc := tc.nodes["east-2"].Store().Identity().Incarnation
		if err := tc.kill("east-2"); err != nil {
			t.Fatal(err)
		}
		if err := tc.start("east-2"); err != nil {
			t.Fatal(err)
		}
		if got := tc.nodes["east-2"].Store().Identity().Incarnation; got != inc {
			t.Fatalf("restart changed the incarnation from %s to %s", inc, got)
		}
		waitFor(t, func() error {
			if st := tc.nodes["east-1"].PeerState("east-2"); st != node.StateUp {
				return fmt.Errorf("east-2 is %s", st)
			}
			return nil
		})
		if tc.nodes["east-2"].Gated() {
			t.Fatal("a plain restart gated the node's reads")
		}
	})
}

package sim_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/sim"
)

// A fence sent to every node cuts a region off as its loss would, without
// the network dropping a packet: writes in the other regions succeed and
// leave hints for it, its peers are marked down, its clients fail over,
// and it holds nothing written meanwhile (inspected through its own
// nodes). Lifted, the hints drain and it catches up.
func TestFenceCutsRegionOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := sim.NewCluster(sim.Options{Seed: 13, Regions: []string{"east", "west", "south"}, NodesPerRegion: 2, Replicas: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.WaitConverged(time.Minute); err != nil {
			t.Fatal(err)
		}
		east, err := c.Client("east")
		if err != nil {
			t.Fatal(err)
		}
		west, err := c.Client("west")
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		fenceAll := func(region string, d time.Duration) {
			t.Helper()
			for _, n := range east.Nodes() {
				res, err := east.Fence(ctx, n, region, d)
				if err != nil {
					t.Fatal(err)
				}
				if region != "" && len(res.Peers) == 0 {
					t.Fatalf("%s fenced off no peer: %+v", n.ID, res)
				}
			}
		}
		before := c.Net.Stats()
		fenceAll("west", time.Hour)

		var keys []string
		for i := range 20 {
			key := fmt.Sprintf("k%d", i)
			keys = append(keys, key)
			cl := east
			if i%2 == 1 {
				cl = west // fails over: west's nodes refuse
			}
			res, err := cl.Put(ctx, []byte(key), []byte("v-"+key), &client.WriteOptions{Consistency: "LOCAL_QUORUM"})
			if err != nil {
				t.Fatalf("put %s during the fence: %v", key, err)
			}
			if c.Config(res.Coordinator).DC == "west" {
				t.Fatalf("put %s was coordinated by %s, in the fenced region", key, res.Coordinator)
			}
		}
		if got := c.Net.Stats().Cut - before.Cut; got != 0 {
			t.Fatalf("the network cut %d packets: the fence, not the network, must drop the traffic", got)
		}
		if c.PendingHints() == 0 {
			t.Fatal("no hint stored for the fenced region")
		}
		for _, id := range c.Region("east") {
			for _, w := range c.Region("west") {
				if st := c.Node(id).PeerState(w); st == node.StateUp {
					t.Fatalf("%s sees %s up during the fence", id, w)
				}
			}
		}
		// Through a west node (inspect is served there), the west replicas
		// hold none of it.
		var westNodes []client.Node
		for _, n := range east.Nodes() {
			if n.DC == "west" {
				westNodes = append(westNodes, n)
			}
		}
		inside, err := c.Dial(client.Config{DC: "west", Nodes: westNodes})
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range keys {
			res, err := inside.Inspect(ctx, "", []byte(key))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res.Replicas {
				if r.DC == "west" && (r.Error != "" || len(r.Values) > 0) {
					t.Fatalf("west replica %s of %s during the fence: values %v, error %q", r.Node, key, r.Values, r.Error)
				}
			}
		}

		fenceAll("", 0)
		deadline := time.Now().Add(2 * time.Minute)
		for {
			scan, err := c.Scan("default")
			if err != nil {
				t.Fatal(err)
			}
			missing := 0
			for _, id := range c.Region("west") { // 2 replicas of 2 nodes: each holds every key
				for _, key := range keys {
					if !slices.Contains(scan[id][key], "v-"+key) {
						missing++
					}
				}
			}
			if missing == 0 && c.PendingHints() == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the fence lifted: %d west replica copies missing, %d hints pending", missing, c.PendingHints())
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/client"
)

// TestProcessesHealGracefulRegionStopByHints is the region-outage drill
// with a graceful stop (SIGTERM, as docker stop and a service restart
// send) and a staggered start: 2 regions × 3 nodes; west's three nodes
// leave the cluster, east writes unique keys at LOCAL_QUORUM, west-1
// starts alone and east writes more, and so does west-1 itself (at ONE),
// then west-2 and west-3 start. Once no
// hint is pending anywhere, hints alone (no repair; inspect does not
// repair) must have brought every acknowledged write to all six replicas.
//
// A node that left gracefully used to be taken off the ring: the writes
// made while it was away were neither sent to it nor hinted for it, and
// once it was back on the ring nothing but repair brought them; and a
// node that started while others were away left them out of its writes,
// for its gossip did not list them.
func TestProcessesHealGracefulRegionStopByHints(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six node processes; skipped in -short")
	}
	pc := newProcCluster(t, "--regions", "east,west", "--wan-latency", "10ms")
	ids := twoRegions
	pc.startAll(ids)
	c := pc.client()

	pc.stopGracefully("west-1", "west-2", "west-3")
	// East knows they left (not merely failed) before it writes: it shows
	// them as left, or (as it did when a member that left lost its place
	// on the ring) not at all.
	pc.waitStatusOf("east-1", "west's nodes left as east-1 sees them", 30*time.Second, func(st statusJSON) bool {
		for _, s := range st.Nodes {
			if s.DC == "west" && s.State != "left" {
				return false
			}
		}
		return true
	})
	written := pc.writeUnique(c, "gone", 150, 8)

	// West-1 back alone: west-2 and west-3 are still away.
	pc.start("west-1")
	pc.waitStatusOf("east-1", "west-1 up as east-1 sees it", 30*time.Second, func(st statusJSON) bool {
		for _, s := range st.Nodes {
			if s.ID == "west-1" {
				return s.State == "up"
			}
		}
		return false
	})
	written = append(written, pc.writeUnique(c, "one-back", 150, 8)...)
	// Writes coordinated by west-1 itself, at ONE (its region has no
	// quorum yet): its gossip does not list west-2 and west-3, which left
	// before it started, yet their copies must be hinted.
	written = append(written, pc.writeUniqueVia("west-1", "ONE", "via-west-1", 50)...)

	pc.start("west-2")
	pc.start("west-3")
	pc.waitAllSeeAll(ids)
	pc.waitStatus("every node up with no hints pending", time.Minute, noHints)

	missing := pc.checkAllEverywhere(c, written)
	if len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged writes are not on all six replicas after the hints drained, e.g. %v", len(missing), len(written), missing[0])
	}
}

// writeUniqueVia writes n keys "<prefix>-<i>" with value "v-<key>" through
// the node id alone, at consistency, and returns them; every write must be
// acknowledged.
func (pc *procCluster) writeUniqueVia(id, consistency, prefix string, n int) []string {
	pc.t.Helper()
	cfg, err := client.LoadConfig(filepath.Join(pc.dir, "client.yaml"))
	if err != nil {
		pc.t.Fatal(err)
	}
	i := slices.IndexFunc(cfg.Nodes, func(nd client.Node) bool { return nd.ID == id })
	if i < 0 {
		pc.t.Fatalf("%s is not in the client configuration", id)
	}
	cfg.DC, cfg.Nodes = cfg.Nodes[i].DC, cfg.Nodes[i:i+1]
	c, err := client.Dial(context.Background(), cfg)
	if err != nil {
		pc.t.Fatal(err)
	}
	defer c.Close()
	var keys []string
	for i := range n {
		key := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := c.Put(context.Background(), []byte(key), []byte("v-"+key), &client.WriteOptions{Consistency: consistency}); err != nil {
			pc.t.Fatalf("put %s through %s at %s: %v", key, id, consistency, err)
		}
		keys = append(keys, key)
	}
	return keys
}

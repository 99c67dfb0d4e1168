package sim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/sim"
	"github.com/meridian-kv/meridian/wan"
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

// A fence needs the admin permission, and lifts by itself at its deadline:
// the fenced region's nodes serve writes again and take their hints.
func TestFenceNeedsAdminAndLiftsAtItsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var audit lockedBuffer
		c, err := sim.NewCluster(sim.Options{Seed: 14, Regions: []string{"east", "west"}, NodesPerRegion: 2, Replicas: 2,
			Node: func(id string, o *node.Options) {
				if id == "east-1" {
					o.Audit = &audit
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.WaitConverged(time.Minute); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		admin, err := c.Client("east")
		if err != nil {
			t.Fatal(err)
		}
		creds, err := c.Credentials("alice", wan.RoleClient) // no grant
		if err != nil {
			t.Fatal(err)
		}
		alice, err := c.Dial(client.Config{DC: "east", Credentials: creds})
		if err != nil {
			t.Fatal(err)
		}
		var n client.Node
		for _, m := range admin.Nodes() {
			if m.ID == "east-1" {
				n = m
			}
		}
		if _, err := alice.Fence(ctx, n, "west", time.Minute); !errors.Is(err, client.ErrForbidden) {
			t.Fatalf("a fence without the admin permission: %v, want forbidden", err)
		}
		if got := c.Node(n.ID).FenceState(); got.Region != "" {
			t.Fatalf("a refused fence went up on %s: %+v", n.ID, got)
		}
		for _, n := range admin.Nodes() {
			if _, err := admin.Fence(ctx, n, "west", 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		if got := c.Node(n.ID).FenceState(); got.Region != "west" || len(got.Peers) != 2 {
			t.Fatalf("fence on %s: %+v, want west's two nodes cut off", n.ID, got)
		}
		west, err := c.Client("west")
		if err != nil {
			t.Fatal(err)
		}
		res, err := west.Put(ctx, []byte("k"), []byte("during"), nil)
		if err != nil || c.Config(res.Coordinator).DC == "west" {
			t.Fatalf("put during the fence: %+v, %v; want it coordinated outside west", res, err)
		}
		var fences []string
		for _, line := range strings.Split(strings.TrimSpace(audit.String()), "\n") {
			var e struct{ Principal, Operation, Outcome string }
			if json.Unmarshal([]byte(line), &e) == nil && e.Operation == "fence" {
				fences = append(fences, e.Principal+" "+e.Outcome)
			}
		}
		if len(fences) != 2 || !strings.HasPrefix(fences[0], "alice ") || fences[0] == "alice ok" || fences[1] != "admin ok" {
			t.Fatalf("east-1 audited these fences: %q; want alice's refused, then admin's", fences)
		}
		time.Sleep(11 * time.Second)
		for _, n := range admin.Nodes() {
			if got := c.Node(n.ID).FenceState(); got.Region != "" || len(got.Peers) != 0 {
				t.Fatalf("%s still fenced after the deadline: %+v", n.ID, got)
			}
		}
		deadline := time.Now().Add(time.Minute)
		for c.PendingHints() > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d hints still pending a minute after the fence lifted", c.PendingHints())
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// lockedBuffer is a bytes.Buffer safe for a node's audit log and a test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

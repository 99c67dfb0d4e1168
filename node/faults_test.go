package node_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/version"
)

// op is one recorded client operation.
type op struct {
	key, value string
	phase      string
	ok         bool
	err        error
}

// history records operations from concurrent writers.
type history struct {
	mu  sync.Mutex
	ops []op
}

func (h *history) add(o op) {
	h.mu.Lock()
	h.ops = append(h.ops, o)
	h.mu.Unlock()
}

// TestNoAcknowledgedWriteLostUnderFaults writes unique keys through a
// sequence of faults injected by the WAN emulator — one node cut off, then
// the two regions partitioned — heals, and checks from the recorded history
// that every acknowledged write reached every replica in both regions
// through hinted handoff alone (no repair), and that the faults really
// happened (hints were created, packets dropped).
func TestNoAcknowledgedWriteLostUnderFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, latency: 3 * time.Millisecond})
		h := &history{}
		seq := 0
		write := func(phase string, n int) {
			var wg sync.WaitGroup
			for w := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range n {
						key := fmt.Sprintf("%s-w%d-%d", phase, w, i)
						value := fmt.Sprintf("v-%s", key)
						ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
						_, err := tc.client.Put(ctx, []byte(key), []byte(value), &client.WriteOptions{Consistency: "LOCAL_QUORUM"})
						cancel()
						h.add(op{key: key, value: value, phase: phase, ok: err == nil, err: err})
					}
				}()
			}
			wg.Wait()
			seq++
		}

		write("healthy", 10)

		// Cut one east node off (not the client's only way in: the client
		// fails over to the other east nodes).
		const victim = "east-3"
		tc.isolate(victim)
		write("node-down", 20)
		tc.restore(victim)

		// Partition the regions: LOCAL_QUORUM writes in east go on; west's
		// copies become hints.
		tc.sim.Net.CutRegions("east", "west", true)
		write("partition", 20)
		tc.sim.Net.Heal()

		var stored int64
		for _, n := range tc.nodes {
			stored += n.Hints().Stored
		}
		if stored == 0 {
			t.Fatal("vacuous: the faults created no hints")
		}
		if st := tc.sim.Net.Stats(); st.Cut == 0 {
			t.Fatal("vacuous: the network dropped no packet")
		}

		acked := 0
		for _, o := range h.ops {
			if o.ok {
				acked++
			} else {
				t.Logf("write %s failed: %v", o.key, o.err)
			}
		}
		t.Logf("%d of %d writes acknowledged; %d hints stored", acked, len(h.ops), stored)
		if acked < len(h.ops)*9/10 {
			t.Errorf("availability: only %d of %d LOCAL_QUORUM writes succeeded while a quorum of east was reachable", acked, len(h.ops))
		}

		// Hints drain to zero (P7) and every acknowledged write is on every
		// replica in every region (P1), without repair.
		waitFor(t, func() error {
			for id, n := range tc.nodes {
				if p := n.PendingHints(); len(p) > 0 {
					return fmt.Errorf("%s still holds hints: %v", id, p)
				}
			}
			for _, o := range h.ops {
				if !o.ok {
					continue
				}
				for id, n := range tc.nodes {
					obj, err := n.Store().Get("default", []byte(o.key))
					if err != nil {
						return err
					}
					if v := obj.Values(); len(v) != 1 || string(v[0]) != o.value {
						return fmt.Errorf("acknowledged write %s (%s) missing on %s: holds %q", o.key, o.phase, id, v)
					}
				}
			}
			return nil
		})
		var delivered int64
		for _, n := range tc.nodes {
			delivered += n.Hints().Delivered
		}
		if delivered == 0 {
			t.Error("every replica converged but no hint was delivered: the test did not exercise handoff")
		}
	})
}

// TestHintNeverOverwritesNewerData holds a hint for a replica, gives the
// replica a newer value (one that saw the hinted write) meanwhile, and
// checks delivery leaves the newer value alone.
func TestHintNeverOverwritesNewerData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east"}})
		key := []byte("contended")
		ring, err := tc.client.Ring(ctx(t), "", key)
		if err != nil {
			t.Fatal(err)
		}
		targetID := ring.Replicas["east"][2]
		target := tc.nodes[targetID]
		tc.isolate(targetID)
		if _, err := tc.client.Put(ctx(t), key, []byte("old"), &client.WriteOptions{Consistency: "LOCAL_QUORUM"}); err != nil {
			t.Fatal(err)
		}
		// Wait until the write's own copy to the target gave up, so that
		// hinted handoff, not that copy, brings the write over.
		waitFor(t, func() error {
			if err := tc.inFlight(""); err != nil {
				return err
			}
			for _, n := range tc.nodes {
				if _, ok := n.PendingHints()[targetID]; ok {
					return nil
				}
			}
			return fmt.Errorf("no hint for %s yet", targetID)
		})
		// The target learns of "old" and supersedes it, as if a later write
		// had reached it first.
		var holder *version.Object
		for id, n := range tc.nodes {
			if id != targetID {
				if holder, err = n.Store().Get("default", key); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		newer := holder.Update(holder.Context(), targetID, version.Write{Value: []byte("new")})
		if _, _, err := target.Store().Merge("default", key, newer); err != nil {
			t.Fatal(err)
		}
		tc.restore(targetID)
		waitFor(t, func() error {
			for id, n := range tc.nodes {
				if len(n.PendingHints()) > 0 {
					return fmt.Errorf("%s still holds hints", id)
				}
			}
			return nil
		})
		obj, err := target.Store().Get("default", key)
		if err != nil {
			t.Fatal(err)
		}
		if v := obj.Values(); len(v) != 1 || string(v[0]) != "new" {
			t.Fatalf("after hint delivery the target holds %q, want only the newer value", v)
		}
	})
}

// TestClientFailsOverToAnotherRegionAndBack cuts the client's whole region
// off: writes go on through the next region (where LOCAL_QUORUM then
// applies), and return to the own region once it is back.
func TestClientFailsOverToAnotherRegionAndBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}})
		east := tc.sim.Region("east")
		for _, id := range east {
			tc.isolate(id)
		}
		res, err := tc.client.Put(ctx(t), []byte("failover"), []byte("v1"), &client.WriteOptions{Consistency: "LOCAL_QUORUM"})
		if err != nil {
			t.Fatalf("put with the client's region down: %v", err)
		}
		if !strings.HasPrefix(res.Coordinator, "west-") || res.Acked["west"] < 2 {
			t.Fatalf("failover put coordinated by %s with acks %v, want a west coordinator and a west quorum", res.Coordinator, res.Acked)
		}
		for _, id := range east {
			tc.restore(id)
		}
		waitFor(t, func() error {
			res, err := tc.client.Put(ctx(t), []byte("failback"), []byte("v"), &client.WriteOptions{Consistency: "LOCAL_QUORUM"})
			if err != nil {
				return err
			}
			if !strings.HasPrefix(res.Coordinator, "east-") {
				return fmt.Errorf("still coordinated by %s", res.Coordinator)
			}
			return nil
		})
	})
}

// TestSloppyQuorumUsesAFallback has a datacenter with more nodes than
// replicas: a write whose replica is cut off goes to the next node of the
// datacenter with a hint, counts towards W when the keyspace says hinted
// writes count, and reaches the replica once it is back.
func TestSloppyQuorumUsesAFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east"}, nodesPerRegion: 4, replicas: 3, tweak: func(c *node.Config) {
			ks := c.Keyspaces["default"]
			ks.HintedWritesCount = true
			c.Keyspaces["default"] = ks
		}})
		key := []byte("sloppy")
		ring, err := tc.client.Ring(ctx(t), "", key)
		if err != nil {
			t.Fatal(err)
		}
		down := ring.Replicas["east"][2]
		fallback := ring.Fallbacks["east"][0]
		tc.isolate(down)
		// ALL needs 3 acks: two replicas and the fallback's hint for the third.
		res, err := tc.client.Put(ctx(t), key, []byte("v"), &client.WriteOptions{Consistency: "ALL"})
		if err != nil {
			t.Fatalf("ALL with one replica down and a fallback available: %v", err)
		}
		if res.Acked["east"] != 3 {
			t.Errorf("acked %v, want 3 (two replicas and a hinted fallback)", res.Acked)
		}
		if st, ok := tc.nodes[fallback].PendingHints()[down]; !ok || st.Count != 1 {
			t.Fatalf("fallback %s holds hints %v, want one for %s", fallback, tc.nodes[fallback].PendingHints(), down)
		}
		tc.restore(down)
		waitFor(t, func() error {
			obj, err := tc.nodes[down].Store().Get("default", key)
			if err != nil {
				return err
			}
			if v := obj.Values(); len(v) != 1 || string(v[0]) != "v" {
				return fmt.Errorf("%s holds %q", down, v)
			}
			if p := tc.nodes[fallback].PendingHints(); len(p) != 0 {
				return fmt.Errorf("fallback still holds %v", p)
			}
			return nil
		})
	})
}

// TestRelayThatJustDiedIsPassedOver cuts off the first relay of a key's
// remote datacenter just before a write, before anything noticed: the
// call to it hangs on a dead connection, and the write must still reach
// the datacenter's other replicas through the next relay, in time (hints
// are off, so nothing else would bring it there).
func TestRelayThatJustDiedIsPassedOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, tweak: func(c *node.Config) {
			c.Hints.Disabled = true
		}})
		key := []byte("relayed")
		ring, err := tc.client.Ring(ctx(t), "", key)
		if err != nil {
			t.Fatal(err)
		}
		west := ring.Replicas["west"]
		// Warm the connections, so the first relay's is open when it dies.
		if _, err := tc.client.Put(ctx(t), []byte("warm"), []byte("v"), &client.WriteOptions{Consistency: "EACH_QUORUM"}); err != nil {
			t.Fatal(err)
		}
		tc.isolate(west[0])
		defer tc.restore(west[0])
		if _, err := tc.client.Put(ctx(t), key, []byte("v"), &client.WriteOptions{Consistency: "LOCAL_QUORUM"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() error {
			for _, id := range west[1:] {
				o, err := tc.nodes[id].Store().Get("default", key)
				if err != nil {
					return err
				}
				if len(o.Values()) != 1 {
					return fmt.Errorf("%s holds %q: the write did not get past the dead relay %s", id, o.Values(), west[0])
				}
			}
			return nil
		})
	})
}

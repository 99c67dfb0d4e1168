package node_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/node"
)

// TestRepairConvergesWithoutHints stops a west node with hinted handoff
// disabled, so writes and a delete made meanwhile never reach it; after it
// restarts one repair brings it every acknowledged value, and the deleted
// key is not resurrected by the stale copy it held.
func TestRepairConvergesWithoutHints(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, latency: 2 * time.Millisecond, tweak: func(c *node.Config) {
			c.Hints.Disabled = true
		}})
		c := tc.client
		all := &client.WriteOptions{Consistency: "ALL"}
		if _, err := c.Put(ctx(t), []byte("doomed"), []byte("old"), all); err != nil {
			t.Fatal(err)
		}
		victim := "west-2"
		if err := tc.kill(victim); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for i := range 30 {
			key := fmt.Sprintf("missed-%d", i)
			if _, err := c.Put(ctx(t), []byte(key), []byte("v-"+key), nil); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, key)
		}
		got, err := c.Get(ctx(t), []byte("doomed"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Delete(ctx(t), []byte("doomed"), &client.WriteOptions{Context: got.Context}); err != nil {
			t.Fatal(err)
		}
		// Let every write's fan-out end (they give up on the stopped node at
		// their deadline) before it comes back, so none reaches it late.
		waitFor(t, func() error { return tc.inFlight(victim) })
		if err := tc.start(victim); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() error {
			if st := tc.nodes["east-1"].PeerState(victim); st != node.StateUp {
				return fmt.Errorf("%s is %s", victim, st)
			}
			return nil
		})

		// Not vacuous: the victim really missed the writes and the delete.
		missing := 0
		for _, key := range keys {
			obj, err := tc.nodes[victim].Store().Get("default", []byte(key))
			if err != nil {
				t.Fatal(err)
			}
			if obj.IsEmpty() {
				missing++
			}
		}
		if missing != len(keys) {
			t.Fatalf("the victim holds %d of %d writes made while it was cut off; the test needs it to hold none", len(keys)-missing, len(keys))
		}
		if obj, _ := tc.nodes[victim].Store().Get("default", []byte("doomed")); len(obj.Values()) != 1 {
			t.Fatalf("the victim should still hold the deleted value, holds %q", obj.Values())
		}

		// Peers still hold pooled connections to the victim's previous
		// process: a session's first request on one meets a stateless
		// reset, and the session runs again on a new connection, so the
		// first repair completes and reports every key it fixed.
		var updates int
		res, err := c.Repair(ctx(t), nil, func(*api.RepairProgress) { updates++ })
		if err != nil {
			t.Fatalf("the first repair after the victim restarted: %v", err)
		}
		t.Logf("repair: %+v (%d progress updates)", *res, updates)
		if res.KeysFixed < int64(len(keys)) || res.BytesSent == 0 || updates == 0 {
			t.Errorf("repair fixed %d keys with %d bytes: want at least %d", res.KeysFixed, res.BytesSent, len(keys))
		}
		for _, key := range keys {
			for id, n := range tc.nodes {
				obj, err := n.Store().Get("default", []byte(key))
				if err != nil {
					t.Fatal(err)
				}
				if v := obj.Values(); len(v) != 1 || string(v[0]) != "v-"+key {
					t.Errorf("after repair %s holds %q for %s", id, v, key)
				}
			}
		}
		for id, n := range tc.nodes {
			obj, err := n.Store().Get("default", []byte("doomed"))
			if err != nil {
				t.Fatal(err)
			}
			if len(obj.Values()) != 0 {
				t.Errorf("repair resurrected the deleted value on %s: %q", id, obj.Values())
			}
		}
		// A second repair finds nothing to fix: only trees travel.
		again, err := c.Repair(ctx(t), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if again.KeysFixed != 0 {
			t.Errorf("second repair fixed %d keys, want 0", again.KeysFixed)
		}
	})
}

// TestDroppedHintMarksItsRangeForRepair bounds hints to almost nothing:
// the hint for a cut-off replica is dropped, counted, and its range is
// recorded for the next repair instead of silently diverging.
func TestDroppedHintMarksItsRangeForRepair(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east"}, tweak: func(c *node.Config) {
			c.Hints.MaxBytesPerTarget = 1
		}})
		key := []byte("unhintable")
		ring, err := tc.client.Ring(ctx(t), "", key)
		if err != nil {
			t.Fatal(err)
		}
		down := ring.Replicas["east"][2]
		if err := tc.kill(down); err != nil {
			t.Fatal(err)
		}
		if _, err := tc.client.Put(ctx(t), key, []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() error {
			dropped, dirty := int64(0), 0
			for id, n := range tc.nodes {
				if id == down {
					continue
				}
				dropped += n.Hints().Dropped
				dirty += n.DirtyRanges()
			}
			if dropped == 0 || dirty == 0 {
				return fmt.Errorf("hints dropped %d, dirty ranges %d", dropped, dirty)
			}
			return nil
		})
		// While the replica is down, the dirty range waits for it.
		for id, n := range tc.nodes {
			if id != down {
				n.ScheduleRound(ctx(t))
			}
		}
		if tc.nodes["east-1"].DirtyRanges()+tc.nodes["east-2"].DirtyRanges()+tc.nodes["east-3"].DirtyRanges() == 0 {
			t.Fatal("a dirty range was cleared while its replica was down")
		}
		// Back, it gets the write from the next scheduler round, although no
		// repair window is configured: dirty ranges are repaired at once.
		if err := tc.start(down); err != nil {
			t.Fatal(err)
		}
		tc.waitConverged()
		// A round may stop on a pooled connection to the replica from before
		// its restart (the call times out instead of being reset); the range
		// stays dirty and the next round repairs it, which is the promise.
		waitFor(t, func() error {
			for id, n := range tc.nodes {
				if planned, completed := n.ScheduleRound(ctx(t)); planned != completed {
					return fmt.Errorf("%s: %d of %d dirty tasks completed", id, completed, planned)
				}
			}
			for id, n := range tc.nodes {
				if d := n.DirtyRanges(); d != 0 {
					return fmt.Errorf("%s still has %d dirty ranges", id, d)
				}
			}
			return nil
		})
		o, err := tc.nodes[down].Store().Get("default", key)
		if err != nil || len(o.Values()) != 1 {
			t.Fatalf("%s after the dirty range's repair holds %+v (%v)", down, o, err)
		}
	})
}

// TestRepairResumesFromItsCheckpoint stops a repair part-way (its client
// gives up), restarts the node that ran it, and checks the next repair
// starts where the first stopped: the checkpoint is durable in the store.
func TestRepairResumesFromItsCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}})
		for i := range 20 {
			if _, err := tc.client.Put(ctx(t), fmt.Appendf(nil, "k-%d", i), []byte("v"), nil); err != nil {
				t.Fatal(err)
			}
		}
		// One client bound to east-1, so both repairs run there.
		one := tc.dialOnly("east-1", client.Config{Timeout: 30 * time.Second})

		rctx, cancel := context.WithCancel(ctx(t))
		stoppedAt := 0
		_, err := one.Repair(rctx, nil, func(p *api.RepairProgress) {
			if p.RangesDone >= 10 && stoppedAt == 0 {
				stoppedAt = p.RangesDone
				cancel()
			}
		})
		cancel()
		if err == nil || stoppedAt == 0 {
			t.Fatalf("the first repair was not interrupted (err %v, stopped at %d)", err, stoppedAt)
		}
		// Restart the node that ran it (Close waits for the stopped repair's
		// handler): only the store's checkpoint carries over.
		if err := tc.stop("east-1"); err != nil {
			t.Fatal(err)
		}
		if err := tc.start("east-1"); err != nil {
			t.Fatal(err)
		}
		tc.waitConverged()

		first := -1
		res, err := one.Repair(ctx(t), nil, func(p *api.RepairProgress) {
			if first < 0 {
				first = p.RangesDone
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if first <= stoppedAt-1 || !res.Done || res.RangesDone != res.RangesTotal {
			t.Fatalf("second repair's first report at range %d (the first stopped after %d), final %+v: it did not resume", first, stoppedAt, *res)
		}
		t.Logf("first repair stopped after %d of %d ranges; the second resumed at %d", stoppedAt, res.RangesTotal, first)
	})
}

package node_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/store"
)

// offsetClock is real time plus an offset the test moves forward, shared
// by every node of a cluster.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

const testGrace = time.Hour

// TestDeleteIsNeverResurrected deletes keys while one replica is down and
// hints are off, so that replica keeps the old values. It checks that:
//   - no other replica collects its tombstones while that replica has not
//     been repaired, however long the grace has run;
//   - the replica, back after an outage longer than the grace, refuses to
//     serve reads until it is repaired;
//   - after repair every replica collects its tombstones, and the values do
//     not come back (through reads or further repairs);
//   - a write after collection is not mistaken for one an old context saw.
//
// A control key shows the hazard is real: collecting its tombstones while
// the replica is down (bypassing the gate) lets repair bring it back.
func TestDeleteIsNeverResurrected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := &offsetClock{}
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, now: clock.Now, tweak: func(c *node.Config) {
			c.Hints.Disabled = true
			c.Repair.TombstoneGrace = testGrace
			c.Repair.Background.Disabled = true // the test decides when repair runs, as the clock jumps hours
		}})
		const down = "west-2"
		// Every write goes through east-1, so one replica mints every dot.
		one := dialOne(t, tc, "east-1")
		keys := make([][]byte, 20)
		for i := range keys {
			keys[i] = fmt.Appendf(nil, "doomed-%d", i)
			if _, err := one.Put(ctx(t), keys[i], []byte("old"), &client.WriteOptions{Consistency: "ALL"}); err != nil {
				t.Fatal(err)
			}
		}
		control := []byte("control")
		if _, err := one.Put(ctx(t), control, []byte("old"), &client.WriteOptions{Consistency: "ALL"}); err != nil {
			t.Fatal(err)
		}
		if err := tc.kill(down); err != nil {
			t.Fatal(err)
		}
		stale := map[string]string{} // contexts read before the deletes
		for _, k := range append(keys, control) {
			res, err := one.Get(ctx(t), k, nil)
			if err != nil {
				t.Fatal(err)
			}
			stale[string(k)] = res.Context
			if _, err := one.Delete(ctx(t), k, &client.WriteOptions{Context: res.Context}); err != nil {
				t.Fatal(err)
			}
		}
		// The deletes reached every live replica (the fan-out beyond the
		// quorum finishes in the background).
		waitFor(t, func() error {
			for _, k := range append(keys, control) {
				for id, n := range tc.nodes {
					if id == down {
						continue
					}
					o, err := n.Store().Get("default", k)
					if err != nil {
						return err
					}
					if !store.IsTombstone(o) {
						return fmt.Errorf("%s holds %+v for %s", id, o, k)
					}
				}
			}
			return nil
		})
		// Long past the grace, the live replicas still keep every tombstone:
		// none of them has repaired with the dead replica.
		clock.Advance(3 * testGrace)
		for id, n := range tc.nodes {
			if id == down {
				continue
			}
			if got, err := n.CollectTombstones(ctx(t)); err != nil || got != 0 {
				t.Fatalf("%s collected %d tombstones (err %v) with %s unrepaired", id, got, err, down)
			}
		}
		// The control: collect its tombstones behind the gate's back, once no
		// request tail (fan-out, read repair) can bring one back.
		waitFor(t, func() error {
			for id, n := range tc.nodes {
				if w := n.BackgroundWork(); id != down && w > 0 {
					return fmt.Errorf("%s has %d request tails running", id, w)
				}
			}
			return nil
		})
		for id, n := range tc.nodes {
			if id == down {
				continue
			}
			forceCollect(t, n, control)
		}
		for id, n := range tc.nodes {
			if o, err := n.Store().Get("default", control); id != down && (err != nil || !o.IsEmpty()) {
				t.Fatalf("control on %s after force-collection: %+v, %v", id, o, err)
			}
		}

		if err := tc.start(down); err != nil {
			t.Fatal(err)
		}
		tc.waitConverged()
		back := tc.nodes[down]
		if !back.Gated() {
			t.Fatalf("%s came back after %v down (grace %v) with its reads open", down, 3*testGrace, testGrace)
		}
		st, err := tc.client.Status(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st.Nodes {
			if s.ReadGated != (s.ID == down) {
				t.Fatalf("status shows %s read-gated %v", s.ID, s.ReadGated)
			}
		}
		// It holds the old values, and does not serve them: a read that
		// needs all of west falls short instead of returning "old".
		waitFor(t, func() error {
			insp, err := tc.client.Inspect(ctx(t), "", keys[0])
			if err != nil {
				return err
			}
			if r := replicaState(insp, down); r.Error != "" || len(r.Values) != 1 || r.Values[0] != "old" {
				return fmt.Errorf("%s holds %+v for %s before repair; the test needs it stale", down, r, keys[0])
			}
			return nil
		})
		_, err = tc.client.Get(ctx(t), keys[0], &client.ReadOptions{Consistency: "west=3"})
		if err == nil || !strings.Contains(err.Error(), "west") {
			t.Fatalf("a west=3 read with %s unrepaired returned %v", down, err)
		}
		t.Logf("west=3 read before repair: %v", err)

		// Repair, twice: the second starts after the tombstones the first
		// carried to the returning replica arrived there.
		if _, err := tc.client.Repair(ctx(t), nil, nil); err != nil {
			t.Fatal(err)
		}
		clock.Advance(testGrace + time.Minute)
		if _, err := tc.client.Repair(ctx(t), nil, nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() error {
			if back.Gated() {
				return fmt.Errorf("%s still gates its reads after two repairs", down)
			}
			return nil
		})
		if res, err := tc.client.Get(ctx(t), keys[0], &client.ReadOptions{Consistency: "ALL"}); err != nil || len(res.Values) != 0 {
			t.Fatalf("read at ALL after repair: %+v, %v", res, err)
		}

		clock.Advance(testGrace + time.Minute)
		total := 0
		for id, n := range tc.nodes {
			got, err := n.CollectTombstones(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if got < len(keys) {
				t.Errorf("%s collected %d tombstones, want at least %d", id, got, len(keys))
			}
			total += got
		}
		t.Logf("collected %d tombstones on %d replicas", total, len(tc.nodes))

		if _, err := tc.client.Repair(ctx(t), nil, nil); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			insp, err := tc.client.Inspect(ctx(t), "", k)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range insp.Replicas {
				if r.Error != "" || len(r.Values) != 0 || r.Deleted || len(r.Dots) != 0 {
					t.Fatalf("after collection and another repair, %s holds %+v for %s", r.Node, r, k)
				}
			}
		}
		// The control came back: that is what the gate prevents.
		if res, err := tc.client.Get(ctx(t), control, &client.ReadOptions{Consistency: "ALL"}); err != nil || len(res.Values) != 1 {
			t.Fatalf("control: collecting tombstones behind the gate did not resurrect the value (%+v, %v); the test would not catch a resurrection", res, err)
		}

		// A blind write after collection and a write carrying a context read
		// before the delete are concurrent: both must survive as siblings.
		k := keys[1]
		if _, err := one.Put(ctx(t), k, []byte("new-blind"), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := one.Put(ctx(t), k, []byte("new-from-old-read"), &client.WriteOptions{Context: stale[string(k)]}); err != nil {
			t.Fatal(err)
		}
		res, err := one.Get(ctx(t), k, &client.ReadOptions{Consistency: "ALL"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Values) != 2 {
			t.Fatalf("after collection, a blind write and a write with a pre-delete context gave %q, want both as siblings", res.Values)
		}
	})
}

func replicaState(r *api.InspectResponse, id string) api.ReplicaState {
	for _, rep := range r.Replicas {
		if rep.Node == id {
			return rep
		}
	}
	return api.ReplicaState{Error: "absent from inspect"}
}

// forceCollect removes key's tombstone from n's store whatever the
// repair records say.
func forceCollect(t *testing.T, n *node.Node, key []byte) {
	t.Helper()
	waitFor(t, func() error {
		collected := false
		err := n.Store().Tombstones("default", func(_ uint64, k []byte, at time.Time) error {
			if string(k) != string(key) {
				return nil
			}
			var err error
			collected, err = n.Store().CollectTombstone("default", k, at)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		o, err := n.Store().Get("default", key)
		if err != nil {
			t.Fatal(err)
		}
		if !collected || !o.IsEmpty() {
			return fmt.Errorf("%s: force-collecting %s: collected %v, left %+v", n.ID(), key, collected, o)
		}
		return nil
	})
}

// dialOne returns a client that talks to node id only.
func dialOne(t *testing.T, tc *testCluster, id string) *client.Client {
	t.Helper()
	return tc.dialOnly(id, client.Config{Timeout: 10 * time.Second})
}

// setTo moves the clock to t.
func (c *offsetClock) setTo(t time.Time) { c.off.Store(int64(time.Until(t))) }

package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/version"
)

// TestSchedulerFollowsItsWindows drives the repair scheduler of a cluster
// through an injected clock, with no sleeps: outside the east/west window
// nothing runs; inside it, one pass repairs a key only east-1 holds into
// the west replicas; a second round in the same opening does nothing; the
// next day's opening starts a new pass.
func TestSchedulerFollowsItsWindows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := &offsetClock{}
		day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
		clock.setTo(day.Add(time.Hour)) // 01:00, before the window
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, now: clock.Now, tweak: func(c *node.Config) {
			c.Hints.Disabled = true
			c.Repair.Windows = []node.RepairWindow{{Pair: []string{"east", "west"}, Cron: "0 2 * * *", Duration: time.Hour}}
		}})
		key := []byte("only-on-east-1")
		obj := version.New().Update(nil, "east-1", version.Write{Value: []byte("v")})
		if _, _, err := tc.nodes["east-1"].Store().Merge("default", key, obj); err != nil {
			t.Fatal(err)
		}
		round := func() (planned, completed int) {
			for _, n := range tc.nodes {
				p, c := n.ScheduleRound(context.Background())
				planned, completed = planned+p, completed+c
			}
			return planned, completed
		}
		westHasIt := func() error {
			for _, id := range []string{"west-1", "west-2", "west-3"} {
				o, err := tc.nodes[id].Store().Get("default", key)
				if err != nil {
					return err
				}
				if len(o.Values()) != 1 {
					return fmt.Errorf("%s holds %q", id, o.Values())
				}
			}
			return nil
		}

		if p, _ := round(); p != 0 {
			t.Fatalf("at 01:00, outside the 02:00-03:00 window, %d tasks were planned", p)
		}
		if westHasIt() == nil {
			t.Fatal("west has the key before any repair; the test needs it missing")
		}

		clock.setTo(day.Add(2*time.Hour + 5*time.Minute))
		rounds := 0
		for {
			p, c := round()
			if p == 0 {
				break
			}
			if c != p {
				t.Fatalf("round %d: %d of %d tasks completed", rounds, c, p)
			}
			if rounds++; rounds > 20 {
				t.Fatal("the pass does not end")
			}
		}
		if err := westHasIt(); err != nil {
			t.Fatalf("after the scheduled pass: %v", err)
		}
		st, err := tc.client.RepairStatus(ctx(t), "")
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, p := range st.Pairs {
			if p.Pair != "east/west" {
				continue
			}
			found = true
			if p.LastFullCompleted == 0 || p.KeysFixed == 0 {
				t.Fatalf("east/west status after the pass: %+v", p)
			}
			if want := day.AddDate(0, 0, 1).Add(2 * time.Hour).Unix(); p.NextWindow != -1 && p.NextWindow != want {
				t.Fatalf("next window %d, want %d (or -1: open now)", p.NextWindow, want)
			}
		}
		if !found {
			t.Fatalf("no east/west pair in %+v", st.Pairs)
		}
		t.Logf("one pass took %d scheduler rounds", rounds)

		clock.setTo(day.Add(2*time.Hour + 30*time.Minute))
		if p, _ := round(); p != 0 {
			t.Fatalf("a second pass started in the same opening (%d tasks)", p)
		}
		clock.setTo(day.Add(3*time.Hour + time.Minute))
		if p, _ := round(); p != 0 {
			t.Fatalf("%d tasks planned after the window closed", p)
		}
		clock.setTo(day.AddDate(0, 0, 1).Add(2*time.Hour + time.Minute))
		if p, _ := round(); p == 0 {
			t.Fatal("the next day's window started no pass")
		}
	})
}

// TestBackgroundRepairWithoutWindows: a cluster with no repair window
// configured still repairs, at the background pace, on the injected
// clock: nothing in the first step after start, then one segment per pair
// at a time, and within the period (24h) a full pass of every pair, which
// brings a key only east-1 holds to the west replicas and shows in
// repair status.
func TestBackgroundRepairWithoutWindows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := &offsetClock{}
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, nodesPerRegion: 2, now: clock.Now, tweak: func(c *node.Config) {
			c.Hints.Disabled = true
		}})
		start := clock.Now()
		key := []byte("background-only-on-east-1")
		obj := version.New().Update(nil, "east-1", version.Write{Value: []byte("v")})
		if _, _, err := tc.nodes["east-1"].Store().Merge("default", key, obj); err != nil {
			t.Fatal(err)
		}
		round := func() (planned int) {
			for _, n := range tc.nodes {
				p, c := n.ScheduleRound(context.Background())
				if c != p {
					t.Fatalf("%d of %d tasks completed", c, p)
				}
				planned += p
			}
			return planned
		}
		westHasIt := func() error {
			for _, id := range []string{"west-1", "west-2"} {
				o, err := tc.nodes[id].Store().Get("default", key)
				if err != nil {
					return err
				}
				if len(o.Values()) != 1 {
					return fmt.Errorf("%s holds %q", id, o.Values())
				}
			}
			return nil
		}
		if p := round(); p != 0 {
			t.Fatalf("%d tasks planned right after start", p)
		}
		const pairs = 3 // east/east, east/west, west/west
		step := 15 * time.Minute
		tasks, fixedAt := 0, time.Duration(0)
		for clock.Now().Sub(start) < node.DefaultBackgroundPeriod {
			clock.Advance(step)
			p := round()
			if p > pairs {
				t.Fatalf("%d tasks in one round at %v: more than one segment per pair", p, clock.Now().Sub(start).Round(time.Minute))
			}
			tasks += p
			if fixedAt == 0 && westHasIt() == nil {
				fixedAt = clock.Now().Sub(start)
			}
		}
		if fixedAt == 0 {
			t.Fatalf("after %v with no windows, west still lacks the key", node.DefaultBackgroundPeriod)
		}
		st, err := tc.client.RepairStatus(ctx(t), "")
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Pairs) != pairs {
			t.Fatalf("status lists %d pairs, want %d: %+v", len(st.Pairs), pairs, st.Pairs)
		}
		for _, p := range st.Pairs {
			if p.LastFullCompleted == 0 || !strings.HasPrefix(p.Schedule, "background") {
				t.Errorf("no full background pass of %s within the period: %+v", p.Pair, p)
			}
		}
		t.Logf("%d tasks over %v of clock; the key reached west after %v", tasks, node.DefaultBackgroundPeriod, fixedAt)
	})
}

// TestBackgroundPassGoesOnPastAFailingSegment: east-1 holds, in the ring's
// first segment, an object too large to send in one message, and in a
// later segment a key the west replicas lack. The first segment's repair
// fails on every try, yet the pass goes on and repairs the later key; the
// pairs with east-1 never complete a pass (tombstones wait for it), the
// west/west pair does.
func TestBackgroundPassGoesOnPastAFailingSegment(t *testing.T) {
	movesMegabytes(t)
	synctest.Test(t, func(t *testing.T) {
		clock := &offsetClock{}
		// The first segment holds an object past the message limit
		// (max_object_bytes of 1 MiB and 4 replicas make 6 MiB): eight
		// siblings of 900 KB made by merging concurrent writes.
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, nodesPerRegion: 2, now: clock.Now, tweak: func(c *node.Config) {
			c.Hints.Disabled = true
			c.Limits.MaxObjectBytes = 1 << 20
		}})
		start := clock.Now()
		keyIn := func(prefix string, seg uint64) []byte {
			for i := 0; ; i++ {
				if k := fmt.Sprintf("%s-%d", prefix, i); placement.KeyToken([]byte(k))>>60 == seg {
					return []byte(k)
				}
			}
		}
		huge := version.New()
		for i := range 8 {
			huge = version.Merge(huge, version.New().Update(nil, fmt.Sprintf("w%d", i), version.Write{Value: bigValue(fmt.Sprint("huge", i), 900_000)}))
		}
		if _, _, err := tc.nodes["east-1"].Store().Merge("default", keyIn("huge", 0), huge); err != nil {
			t.Fatal(err)
		}
		later := keyIn("later", 5)
		if _, _, err := tc.nodes["east-1"].Store().Merge("default", later, version.New().Update(nil, "east-1", version.Write{Value: []byte("v")})); err != nil {
			t.Fatal(err)
		}
		failed := 0
		for clock.Now().Sub(start) < node.DefaultBackgroundPeriod {
			clock.Advance(15 * time.Minute)
			for _, n := range tc.nodes {
				p, c := n.ScheduleRound(context.Background())
				failed += p - c
			}
		}
		if failed == 0 {
			t.Fatal("no task failed; the test needs the first segment to fail")
		}
		for _, id := range []string{"west-1", "west-2"} {
			o, err := tc.nodes[id].Store().Get("default", later)
			if err != nil {
				t.Fatal(err)
			}
			if len(o.Values()) != 1 {
				t.Errorf("%s lacks the key of a later segment after a day of background repair", id)
			}
		}
		st, err := tc.client.RepairStatus(ctx(t), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range st.Pairs {
			if complete := p.LastFullCompleted != 0; complete != (p.Pair == "west/west") {
				t.Errorf("%s: last full pass %d, pass %.2f done", p.Pair, p.LastFullCompleted, p.PassFraction)
			}
		}
		t.Logf("%d failed tasks", failed)
	})
}

package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/version"
)

// bigValue returns a value of n bytes unique to key.
func bigValue(key string, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = key[i%len(key)] ^ byte(i>>8)
	}
	return b
}

// TestRepairConvergesDifferencesLargerThanAFrame stores forty values of
// 900 KB on every replica but one (36 MB of differences, nine times the
// 4 MiB frame): one repair brings them all to that replica, in messages
// that each fit a frame.
func TestRepairConvergesDifferencesLargerThanAFrame(t *testing.T) {
	movesMegabytes(t)
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, nodesPerRegion: 2, tweak: func(c *node.Config) {
			c.Hints.Disabled = true
		}})
		victim := "west-2"
		const count, size = 40, 900_000
		var keys []string
		for i := range count {
			key := fmt.Sprintf("big-%02d", i)
			keys = append(keys, key)
			obj := version.New().Update(nil, "east-1", version.Write{Value: bigValue(key, size)})
			for id, n := range tc.nodes {
				if id == victim {
					continue
				}
				if _, _, err := n.Store().Merge("default", []byte(key), obj); err != nil {
					t.Fatal(err)
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		res, err := tc.client.Repair(ctx, nil, nil)
		if err != nil {
			t.Fatalf("repair: %v", err)
		}
		t.Logf("repair: %d keys fixed, %d bytes sent for %d bytes diverged (%.2fx)", res.KeysFixed, res.BytesSent, count*size, float64(res.BytesSent)/float64(count*size))
		for _, key := range keys {
			for id, n := range tc.nodes {
				obj, err := n.Store().Get("default", []byte(key))
				if err != nil {
					t.Fatal(err)
				}
				if v := obj.Values(); len(v) != 1 || string(v[0]) != string(bigValue(key, size)) {
					t.Fatalf("after repair %s holds %d values for %s", id, len(v), key)
				}
			}
		}
	})
}

// TestRepairObjectLargerThanAFrameFailsOnlyItsSegment holds on east-1 one
// object larger than any message may be (limits.max_object_bytes of 1 MiB
// and 4 replicas make a 6 MiB message limit; eight siblings of 900 KB, made
// by merging concurrent writes) in the ring's first segment, and on every
// replica but
// west-2 keys spread over the whole ring: the repair reports the key it
// could not send, and repairs every other key anyway.
func TestRepairObjectLargerThanAFrameFailsOnlyItsSegment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, nodesPerRegion: 2, tweak: func(c *node.Config) {
			c.Hints.Disabled = true
			c.Limits.MaxObjectBytes = 1 << 20
		}})
		huge := ""
		for i := 0; huge == ""; i++ {
			if k := fmt.Sprintf("huge-%d", i); placement.KeyToken([]byte(k))>>60 == 0 {
				huge = k
			}
		}
		obj := version.New()
		for i := range 8 {
			obj = version.Merge(obj, version.New().Update(nil, fmt.Sprintf("w%d", i), version.Write{Value: bigValue(fmt.Sprint(huge, i), 900_000)}))
		}
		if _, _, err := tc.nodes["east-1"].Store().Merge("default", []byte(huge), obj); err != nil {
			t.Fatal(err)
		}
		victim := "west-2"
		var keys []string
		for i := range 64 {
			key := fmt.Sprintf("small-%02d", i)
			keys = append(keys, key)
			o := version.New().Update(nil, "east-1", version.Write{Value: []byte("v-" + key)})
			for id, n := range tc.nodes {
				if id == victim {
					continue
				}
				if _, _, err := n.Store().Merge("default", []byte(key), o); err != nil {
					t.Fatal(err)
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, err := tc.client.Repair(ctx, nil, nil)
		if err == nil || !strings.Contains(err.Error(), huge) {
			t.Fatalf("repair returned %v; want an error naming %q", err, huge)
		}
		t.Logf("repair: %v", err)
		for _, key := range keys {
			for id, n := range tc.nodes {
				o, err := n.Store().Get("default", []byte(key))
				if err != nil {
					t.Fatal(err)
				}
				if v := o.Values(); len(v) != 1 {
					t.Errorf("after repair %s holds %d values for %s", id, len(v), key)
				}
			}
		}
	})
}

// TestRepairBudgetHoldsForWhatTheResponderSends: east-1 lacks 8 MB that
// east-2 holds, so in their session (east-1 initiates) the bytes flow from
// the responder. A repair at 4 MiB/s, shared by the two east initiators,
// must still take at least as long as the budget allows for those bytes.
func TestRepairBudgetHoldsForWhatTheResponderSends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, nodesPerRegion: 2, tweak: func(c *node.Config) {
			c.Hints.Disabled = true
		}})
		const count, size, rate = 16, 500_000, 4 << 20
		for i := range count {
			key := fmt.Sprintf("pulled-%02d", i)
			o := version.New().Update(nil, "east-2", version.Write{Value: bigValue(key, size)})
			if _, _, err := tc.nodes["east-2"].Store().Merge("default", []byte(key), o); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		start := time.Now()
		res, err := tc.client.Repair(ctx, &client.RepairOptions{Regions: []string{"east"}, BytesPerSecond: rate}, nil)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		// Each of the two initiators gets rate/2; the limiter lets one
		// second's worth (its burst) go at once.
		least := time.Duration((count*size - rate/2) * int64(time.Second) / (rate / 2))
		t.Logf("repair at %d B/s: %d keys fixed, %d bytes sent in %v (budget allows no less than %v)", rate, res.KeysFixed, res.BytesSent, took.Round(time.Millisecond), least.Round(time.Millisecond))
		if res.KeysFixed < count {
			t.Fatalf("repair fixed %d keys, want %d", res.KeysFixed, count)
		}
		if took < least {
			t.Errorf("repair took %v; at %d B/s it cannot take less than %v", took, rate, least)
		}
	})
}

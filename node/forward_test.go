package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/sim"
)

// TestForwardedPutWithUnknownOutcomeIsNotForwardedAgain: a node that holds
// no replica of a key forwards a put to a replica, which applies it and
// dies before answering. The forwarder must not hand the put to another
// replica — that one would mint a second dot, and the one write would
// become two siblings (P9) — and its error says the write may have been
// applied.
func TestForwardedPutWithUnknownOutcomeIsNotForwardedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One replica per region: an east node that is not the east replica
		// forwards to it first, then to the west one.
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, nodesPerRegion: 2, replicas: 1})
		key := []byte("forwarded-once")
		ring, err := tc.client.Ring(ctx(t), "", key)
		if err != nil {
			t.Fatal(err)
		}
		first, second := ring.Replicas["east"][0], ring.Replicas["west"][0]
		var fwd string
		for _, id := range tc.sim.Region("east") {
			if id != first {
				fwd = id
			}
		}
		// A slow WAN keeps the east replica waiting for the west ack (ALL)
		// for a round trip after the west replica holds the write.
		const wanDelay = time.Second
		tc.sim.Net.SetLink("east", "west", sim.Link{Latency: wanDelay})
		tc.sim.Net.SetLink("west", "east", sim.Link{Latency: wanDelay})

		only := tc.dialOnly(fwd, client.Config{Timeout: 10 * time.Second})
		errc := make(chan error, 1)
		go func() {
			_, err := only.Put(context.Background(), key, []byte("v"), &client.WriteOptions{Consistency: "ALL"})
			errc <- err
		}()

		// Once the east replica applied the put and its copy reached the west
		// replica, the east replica dies before it can answer the forwarder.
		waitFor(t, func() error {
			o, err := tc.nodes[second].Store().Get("default", key)
			if err != nil {
				return err
			}
			if o == nil || len(o.Values()) == 0 {
				return fmt.Errorf("%s does not hold the key yet", second)
			}
			return nil
		})
		if err := tc.kill(first); err != nil {
			t.Fatal(err)
		}
		var putErr error
		select {
		case putErr = <-errc:
		case <-time.After(30 * time.Second):
			t.Fatal("the put did not return")
		}
		t.Logf("put: %v", putErr)
		if putErr == nil {
			t.Fatal("the put succeeded although the replica coordinating it died before answering")
		}
		// The forwarder answers only after its last attempt ended: a second
		// coordinator, if any, has written by now.
		o, err := tc.nodes[second].Store().Get("default", key)
		if err != nil {
			t.Fatal(err)
		}
		if v := o.Values(); len(v) != 1 {
			t.Fatalf("%s holds %d siblings %q for one write: the forwarder sent it to a second coordinator", second, len(v), v)
		}
		if !strings.Contains(putErr.Error(), "may have been applied") {
			t.Errorf("the put's error does not say it may have been applied: %v", putErr)
		}
	})
}

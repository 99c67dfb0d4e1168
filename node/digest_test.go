package node_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/version"
)

// replicaServes returns the nodes other than coord that served object
// reads ("replica.read", "relay.read") and digest reads ("replica.digest",
// "relay.digests") in the trace of the last "get default" client span. A
// relay serves its own copy under its relay span.
func replicaServes(rec *tracetest.SpanRecorder, coord string) (reads, digests []string) {
	var root trace.SpanContext
	for _, s := range rec.Ended() {
		if s.Name() == "get default" && s.SpanKind() == trace.SpanKindClient {
			root = s.SpanContext()
		}
	}
	for _, s := range rec.Ended() {
		name := strings.Fields(s.Name())
		if !root.IsValid() || s.SpanContext().TraceID() != root.TraceID() || s.SpanKind() != trace.SpanKindServer || len(name) != 2 || name[1] == coord {
			continue
		}
		switch name[0] {
		case "replica.read", "relay.read":
			reads = append(reads, name[1])
		case "replica.digest", "relay.digests":
			digests = append(digests, name[1])
		}
	}
	slices.Sort(reads)
	slices.Sort(digests)
	return reads, digests
}

// coordinated starts a cluster of regions (nil: the default three)
// recording spans and returns it, the recorder, the first east replica of
// key and a client that sends every request to that replica.
func coordinated(t *testing.T, regions []string, key []byte) (*testCluster, *tracetest.SpanRecorder, string, *client.Client) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tc := startCluster(t, clusterOpts{regions: regions, tracer: tp})
	ring, err := tc.client.Ring(ctx(t), "", key)
	if err != nil {
		t.Fatal(err)
	}
	coord := ring.Replicas["east"][0]
	cl := tc.dial(client.Config{DC: "east", TracerProvider: tp, Nodes: []client.Node{{ID: coord, DC: "east", Addr: tc.config(coord).Listen}}})
	return tc, rec, coord, cl
}

// bytesPerRead writes a 16 KiB value to key at ALL through cl, reads it
// back reads times at level, and checks that the network carried the
// value no more than 1.5 times a read, and that the last read was served
// digests (and no objects) by wantDigests replicas other than coord.
func bytesPerRead(t *testing.T, tc *testCluster, rec *tracetest.SpanRecorder, coord string, cl *client.Client, key []byte, level string, reads, wantDigests int) {
	t.Helper()
	value := []byte(strings.Repeat("d", 16<<10))
	if _, err := cl.Put(ctx(t), key, value, &client.WriteOptions{Consistency: "ALL"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() error { return tc.inFlight("") })
	before := tc.sim.Net.Stats().DatagramBytes
	for range reads {
		res, err := cl.Get(ctx(t), key, &client.ReadOptions{Consistency: level})
		if err != nil || len(res.Values) != 1 || string(res.Values[0]) != string(value) {
			t.Fatalf("%s read: %v, %v", level, res, err)
		}
	}
	waitFor(t, func() error { return tc.inFlight("") })
	sent := tc.sim.Net.Stats().DatagramBytes - before
	if limit := int64(reads*len(value)) * 3 / 2; sent > limit {
		t.Errorf("%d %s reads of a %d-byte value sent %d bytes (%.1f values a read), want at most %d: replicas sent their objects", reads, level, len(value), sent, float64(sent)/float64(reads)/float64(len(value)), limit)
	}
	objects, digests := replicaServes(rec, coord)
	if len(objects) != 0 || len(digests) != wantDigests {
		t.Errorf("the last %s read was served object reads by %v and digest reads by %v, want %d digest reads", level, objects, digests, wantDigests)
	}
}

// A LOCAL_QUORUM read at a replica compares its own copy with the other
// replica's digest: the other replica sends 16 bytes, not the value. Over
// 20 reads of a 16 KiB value the network carries the value once per read,
// to the client, and not a second time from the replica. (Before digest
// reads, the replica sent its whole object on every read: twice the bytes.)
func TestDigestReadsLeaveTheValueAtTheReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		key := []byte("digest")
		tc, rec, coord, cl := coordinated(t, []string{"east"}, key)
		bytesPerRead(t, tc, rec, coord, cl, key, "LOCAL_QUORUM", 20, 1)
	})
}

// A replica whose copy differs from the coordinator's answers with a
// digest that does not match: the read asks it for its object, returns
// both writes as siblings (a conflict is never silent), and read repair
// gives the coordinator the replica's write.
func TestDigestMismatchReadsTheObject(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		key := []byte("diverged")
		tc, rec, coord, cl := coordinated(t, []string{"east"}, key)
		if _, err := cl.Put(ctx(t), key, []byte("ours"), &client.WriteOptions{Consistency: "ALL"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() error { return tc.inFlight("") })
		// A concurrent write only the other replicas hold.
		theirs := version.New().Update(nil, "east-9~x", version.Write{Value: []byte("theirs"), WrittenAt: 1})
		for _, id := range tc.ids() {
			if id == coord {
				continue
			}
			if errs := node.MergeBatch(tc.nodes[id], coord, []node.BatchWrite{{Keyspace: "default", Key: key, Object: theirs}}); errs[0] != "" {
				t.Fatal(errs[0])
			}
		}
		res, err := cl.Get(ctx(t), key, &client.ReadOptions{Consistency: "LOCAL_QUORUM"})
		if err != nil {
			t.Fatal(err)
		}
		if got := values(res); len(got) != 2 || got[0] != "ours" || got[1] != "theirs" {
			t.Fatalf("LOCAL_QUORUM read of diverged copies: %q, want both writes", got)
		}
		waitFor(t, func() error { return tc.inFlight("") })
		reads, digests := replicaServes(rec, coord)
		if len(digests) != 1 || !slices.Equal(reads, digests) {
			t.Errorf("the read was served digest reads by %v and object reads by %v: want one replica asked for its digest, then its object", digests, reads)
		}
		waitFor(t, func() error {
			obj, err := tc.nodes[coord].Store().Get("default", key)
			if err != nil {
				return err
			}
			if v := obj.Values(); len(v) != 2 {
				return fmt.Errorf("%s holds %q after read repair, want both writes", coord, v)
			}
			return nil
		})
	})
}

// A replica of an earlier release refuses digest batches as an unknown
// message type: reads ask it for its object instead, and still succeed.
func TestReplicaWithoutDigestsServesObjects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		key := []byte("old-replica")
		tc, rec, coord, cl := coordinated(t, []string{"east"}, key)
		for _, id := range tc.ids() {
			node.RefuseDigests(tc.nodes[id], true)
		}
		if _, err := cl.Put(ctx(t), key, []byte("v"), &client.WriteOptions{Consistency: "ALL"}); err != nil {
			t.Fatal(err)
		}
		for range 2 { // the first is refused and falls back; the second asks for objects straight away
			res, err := cl.Get(ctx(t), key, &client.ReadOptions{Consistency: "LOCAL_QUORUM"})
			if err != nil || len(res.Values) != 1 || string(res.Values[0]) != "v" {
				t.Fatalf("LOCAL_QUORUM read from replicas without digests: %v, %v", res, err)
			}
			waitFor(t, func() error { return tc.inFlight("") })
			reads, digests := replicaServes(rec, coord)
			if len(reads) != 1 || len(digests) != 0 {
				t.Errorf("the read was served object reads by %v and digest reads by %v, want one object read", reads, digests)
			}
		}
	})
}

// An EACH_QUORUM read asks two replicas in each of three regions. With
// the coordinator's copy to compare with, the other five send digests,
// the remote ones through their region's relay: the value crosses no WAN
// link, and the network carries it once per read, to the client. (Before,
// each read moved it six times: five replicas' objects and the answer.)
func TestDigestReadsCrossTheWANAsDigests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		key := []byte("digest-wan")
		tc, rec, coord, cl := coordinated(t, nil, key)
		bytesPerRead(t, tc, rec, coord, cl, key, "EACH_QUORUM", 10, 5)
	})
}

// Relays of an earlier release refuse digest reads too: an EACH_QUORUM
// read then reads objects through them, and still succeeds.
func TestRelayWithoutDigestsServesObjects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{})
		for _, id := range tc.ids() {
			node.RefuseDigests(tc.nodes[id], true)
		}
		key := []byte("old-relay")
		if _, err := tc.client.Put(ctx(t), key, []byte("v"), &client.WriteOptions{Consistency: "ALL"}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			res, err := tc.client.Get(ctx(t), key, &client.ReadOptions{Consistency: "EACH_QUORUM"})
			if err != nil || len(res.Values) != 1 || string(res.Values[0]) != "v" {
				t.Fatalf("EACH_QUORUM read through relays without digests: %v, %v", res, err)
			}
		}
	})
}

// A coordinator whose own read fails has no copy to compare digests with:
// the replica that sent one is asked for its object, a spare stands in for
// the coordinator, and the read succeeds.
func TestDigestWithoutOwnCopyReadsTheObject(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		key := []byte("no-own-copy")
		tc, rec, coord, cl := coordinated(t, []string{"east"}, key)
		if _, err := cl.Put(ctx(t), key, []byte("v"), &client.WriteOptions{Consistency: "ALL"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() error { return tc.inFlight("") })
		node.SetUnverified(tc.nodes[coord], true)
		res, err := cl.Get(ctx(t), key, &client.ReadOptions{Consistency: "LOCAL_QUORUM"})
		if err != nil || len(res.Values) != 1 || string(res.Values[0]) != "v" {
			t.Fatalf("LOCAL_QUORUM read with the coordinator's own read failing: %v, %v", res, err)
		}
		waitFor(t, func() error { return tc.inFlight("") })
		objects, digests := replicaServes(rec, coord)
		if len(digests) != 1 || len(objects) != 2 || !slices.Contains(objects, digests[0]) {
			t.Errorf("the read was served digest reads by %v and object reads by %v: want the digest's replica asked for its object, and a spare", digests, objects)
		}
	})
}

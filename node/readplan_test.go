package node_test

import (
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/client"
)

// readsServed returns, for the read whose client span is the last "get
// default" client span recorded, the nodes that served it a replica read
// or its digest (directly or as a relay's target) and the nodes it called
// for one.
func readsServed(rec *tracetest.SpanRecorder) (served, called []string) {
	var root trace.SpanContext
	for _, s := range rec.Ended() {
		if s.Name() == "get default" && s.SpanKind() == trace.SpanKindClient {
			root = s.SpanContext()
		}
	}
	for _, s := range rec.Ended() {
		if !root.IsValid() || s.SpanContext().TraceID() != root.TraceID() {
			continue
		}
		name := strings.Fields(s.Name())
		if len(name) != 2 || (name[0] != "replica.read" && name[0] != "replica.digest" && name[0] != "relay.read" && name[0] != "relay.digests") {
			continue
		}
		switch s.SpanKind() {
		case trace.SpanKindServer:
			served = append(served, name[1])
		case trace.SpanKindClient:
			called = append(called, name[1])
		}
	}
	slices.Sort(served)
	slices.Sort(called)
	return served, called
}

// A read asks the replicas its consistency level needs, not every replica:
// a LOCAL_QUORUM read at a replica of 3 asks one other replica of its
// region and nothing across the WAN; LOCAL_ONE asks none; EACH_QUORUM two
// in each region. (Every replica used to be asked, in every region, whatever
// the level: three messages per LOCAL_QUORUM read in one region and a WAN
// round trip to each of the others.)
func TestReadAsksOnlyWhatItsLevelNeeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		tc := startCluster(t, clusterOpts{latency: 2 * time.Millisecond, tracer: tp})
		key := []byte("asked")
		ring, err := tc.client.Ring(ctx(t), "", key)
		if err != nil {
			t.Fatal(err)
		}
		coord := ring.Replicas["east"][0]
		cl := tc.dial(client.Config{DC: "east", TracerProvider: tp, Nodes: []client.Node{{ID: coord, DC: "east", Addr: tc.config(coord).Listen}}})
		if _, err := cl.Put(ctx(t), key, []byte("v"), &client.WriteOptions{Consistency: "ALL"}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			level        string
			served       int // replica reads served by nodes other than the coordinator
			remoteServed int
		}{
			{"LOCAL_ONE", 0, 0},
			{"LOCAL_QUORUM", 1, 0},
			{"EACH_QUORUM", 5, 4},
			{"ALL", 8, 6},
		} {
			res, err := cl.Get(ctx(t), key, &client.ReadOptions{Consistency: c.level})
			if err != nil || len(res.Values) != 1 || string(res.Values[0]) != "v" {
				t.Fatalf("%s read: %v, %v", c.level, res, err)
			}
			// Read repair and the fan-out's tail end in the background.
			waitFor(t, func() error { return tc.inFlight("") })
			served, _ := readsServed(rec)
			served = slices.DeleteFunc(served, func(id string) bool { return id == coord })
			remote := slices.DeleteFunc(slices.Clone(served), func(id string) bool { return tc.config(id).DC == "east" })
			if len(served) != c.served || len(remote) != c.remoteServed {
				t.Errorf("%s read served by %v (%d across the WAN), want %d other replicas (%d across the WAN)", c.level, served, len(remote), c.served, c.remoteServed)
			}
		}
	})
}

// A replica that stops answering without being known down (its host cut
// off, no probe failed yet) costs a read its patience, not its quorum: the
// read asked it, and a spare stood in for it.
func TestReadAsksASpareWhenAReplicaIsSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		tc := startCluster(t, clusterOpts{regions: []string{"east"}, latency: 2 * time.Millisecond, tracer: tp})
		key := []byte("spare")
		ring, err := tc.client.Ring(ctx(t), "", key)
		if err != nil {
			t.Fatal(err)
		}
		reps := ring.Replicas["east"]
		coord := reps[0]
		cl := tc.dial(client.Config{DC: "east", TracerProvider: tp, Nodes: []client.Node{{ID: coord, DC: "east", Addr: tc.config(coord).Listen}}})
		if _, err := cl.Put(ctx(t), key, []byte("v"), &client.WriteOptions{Consistency: "ALL"}); err != nil {
			t.Fatal(err)
		}
		// A first read tells which replica the coordinator asks.
		if _, err := cl.Get(ctx(t), key, &client.ReadOptions{Consistency: "LOCAL_QUORUM"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() error { return tc.inFlight("") })
		_, called := readsServed(rec)
		if len(called) != 1 {
			t.Fatalf("a LOCAL_QUORUM read at %s called %v, want one other replica", coord, called)
		}
		first := called[0]
		spare := slices.DeleteFunc(slices.Clone(reps), func(id string) bool { return id == coord || id == first })[0]

		tc.isolate(first)
		start := time.Now()
		res, err := cl.Get(ctx(t), key, &client.ReadOptions{Consistency: "LOCAL_QUORUM"})
		took := time.Since(start) // simulated time: the bubble's clock
		if err != nil || len(res.Values) != 1 || string(res.Values[0]) != "v" {
			t.Fatalf("LOCAL_QUORUM read with %s cut off: %v, %v", first, res, err)
		}
		if timeout := tc.config(coord).Limits.RequestTimeout; took >= timeout/2 {
			t.Errorf("the read took %v of simulated time: it waited on %s instead of asking %s (request timeout %v)", took, first, spare, timeout)
		}
		// The call to the cut-off replica ends (its span with it) at the
		// request timeout, in the background.
		waitFor(t, func() error { return tc.inFlight("") })
		served, called := readsServed(rec)
		if !slices.Contains(called, first) || !slices.Contains(served, spare) {
			t.Errorf("the read called %v and was served by %v: want %s asked first and %s standing in", called, served, first, spare)
		}
		tc.restore(first)
	})
}

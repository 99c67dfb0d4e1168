package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/version"
	"github.com/meridian-kv/meridian/wan"
)

// TestHintsDeliveredInBatchesLinkTheirWrites cuts a west replica off while
// keys are written from east, restores it, and checks that its hints reach
// it in batches — far fewer deliveries than hints — and that every write
// that left a hint is linked from the span of the delivery that carried
// it.
//
// It restores the replica only once every key has a hint for it. A
// LOCAL_QUORUM write is acknowledged before its copy to west is done:
// that copy waits for the cut-off replica up to the request timeout, and
// if the replica returns meanwhile the write reaches it directly and
// leaves no hint (nothing to link). Counting hints is not enough either: a
// write may be hinted twice (by the west relay and by the coordinator
// whose relay call ran out of time), so the sum can reach the number of
// keys while some keys have no hint yet.
func TestHintsDeliveredInBatchesLinkTheirWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, latency: 5 * time.Millisecond, tracer: tp})
		const target, keys = "west-3", 300
		tc.isolate(target)

		for i := range keys {
			key := fmt.Sprintf("batched-%d", i)
			if _, err := tc.client.Put(ctx(t), []byte(key), []byte("v-"+key), &client.WriteOptions{Consistency: "LOCAL_QUORUM"}); err != nil {
				t.Fatalf("put %s: %v", key, err)
			}
		}
		pending := func() int {
			c := 0
			for _, n := range tc.nodes {
				c += n.PendingHints()[target].Count
			}
			return c
		}
		writes := map[trace.TraceID]bool{}
		for _, s := range rec.Ended() {
			if s.Name() == "put default" && s.SpanKind() == trace.SpanKindClient {
				writes[s.SpanContext().TraceID()] = true
			}
		}
		if len(writes) != keys {
			t.Fatalf("%d client put spans, want %d", len(writes), keys)
		}
		// Wait until every key has a hint for target, held by any node, and
		// each hint names the trace of a write of the test.
		waitFor(t, func() error {
			hinted := map[string]bool{}
			for id, n := range tc.nodes {
				err := n.Store().Hints(target, 0, func(h store.Hint) error {
					if len(h.Trace) != 24 {
						return fmt.Errorf("%s holds a hint for %s of %q without a trace reference", id, target, h.Key)
					}
					if tid := trace.TraceID(h.Trace[:16]); !writes[tid] {
						return fmt.Errorf("%s holds a hint for %s of %q naming trace %s, not a write of the test", id, target, h.Key, tid)
					}
					hinted[string(h.Key)] = true
					return nil
				})
				if err != nil {
					return err
				}
			}
			if len(hinted) < keys {
				return fmt.Errorf("%d of %d keys have a hint for %s", len(hinted), keys, target)
			}
			// Every write is queued as a hint before it is acknowledged
			// (write-ahead hints); while its own copy is still trying the
			// target, that copy (not handoff) delivers it. Restore the target
			// once every fan-out gave up, so handoff carries them all.
			return tc.inFlight("")
		})

		tc.restore(target)
		waitFor(t, func() error {
			if c := pending(); c > 0 {
				return fmt.Errorf("%d hints for %s still pending", c, target)
			}
			return nil
		})
		for i := range keys {
			key := fmt.Sprintf("batched-%d", i)
			obj, err := tc.nodes[target].Store().Get("default", []byte(key))
			if err != nil {
				t.Fatal(err)
			}
			if v := obj.Values(); len(v) != 1 || string(v[0]) != "v-"+key {
				t.Fatalf("%s holds %q for %s after delivery", target, v, key)
			}
		}

		deliveries, linked := 0, map[trace.TraceID]bool{}
		for _, s := range rec.Ended() {
			if s.Name() != "hint.deliver "+target {
				continue
			}
			deliveries++
			for _, l := range s.Links() {
				linked[l.SpanContext.TraceID()] = true
			}
		}
		t.Logf("%d hints delivered to %s in %d deliveries", keys, target, deliveries)
		if deliveries == 0 || deliveries > keys/10 {
			t.Errorf("%d hint.deliver spans for %d hints, want batches (at most %d)", deliveries, keys, keys/10)
		}
		missing := 0
		for id := range writes {
			if !linked[id] {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("%d of %d writes are not linked from the delivery of their hint", missing, keys)
		}
	})
}

// TestMalformedHintBatchIsRefused sends hint batches a broken or hostile
// peer might (with a valid node certificate): each is refused with an
// error naming the problem, nothing of it is stored, and the node keeps
// serving.
func TestMalformedHintBatchIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east"}})
		target := tc.config("east-1")
		peer := tc.config("east-2")
		tr, err := wan.Listen(wan.Config{Credentials: tc.creds(peer.ID, wan.RoleNode), PacketConn: tc.endpoint(peer.DC)}, wan.HandlerFunc(func(_ context.Context, _ wan.Identity, _ *wan.Envelope, _ wan.Replier) {}))
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()

		good, _ := codec.Marshal(version.New().Update(nil, "east-2", version.Write{Value: []byte("v"), WrittenAt: 1}))
		item := func(key string, obj []byte) []any { return []any{[]byte(key), codec.RawMessage(obj)} }
		null := []byte{0xf6}
		notObject, _ := codec.Marshal("not an object")
		// A sibling its clock does not cover: a replica never holds a write it
		// has not seen.
		bad, _ := codec.Marshal(&version.Object{Clock: version.Vector{"east-2": 1}, Siblings: []version.Sibling{{Dot: version.Dot{Actor: "east-2", Counter: 2}, Value: []byte("v")}}})
		tooMany := make([]any, 4097)
		for i := range tooMany {
			tooMany[i] = item(fmt.Sprintf("m%d", i), good)
		}
		for name, tt := range map[string]struct {
			payload any
			want    string
		}{
			"wrong shape":      {"not a batch", "cannot unmarshal"},
			"unknown keyspace": {[]any{0, "missing", []any{item("k1", good)}}, "unknown keyspace"},
			"no object":        {[]any{0, "default", []any{item("k1", good), item("k2", null)}}, "holds no object"},
			"not an object":    {[]any{0, "default", []any{item("k1", good), item("k2", notObject)}}, "cannot unmarshal"},
			"invalid object":   {[]any{0, "default", []any{item("k1", good), item("k2", bad)}}, "item 1"},
			"key too long":     {[]any{0, "default", []any{item("k1", good), item(strings.Repeat("x", 64<<10+1), good)}}, "key longer than"},
			"too many":         {[]any{0, "default", tooMany}, "exceeds"},
			"unknown version":  {[]any{1, "default", []any{item("k1", good)}}, "unknown message format version 1"},
		} {
			runCase(t, name, func(t testing.TB) {
				payload, err := codec.Marshal(tt.payload)
				if err != nil {
					t.Fatal(err)
				}
				env := &wan.Envelope{V: 1, Type: 56, Payload: codec.RawMessage(payload)}
				var ackErr string
				err = tr.Call(ctx(t), target.Listen, target.ID, env, func(e *wan.Envelope) error {
					var a struct {
						_      struct{} `cbor:",toarray"`
						V      uint8
						Node   string
						Error  string
						Hinted bool
					}
					if err := e.Decode(&a); err != nil {
						return err
					}
					ackErr = a.Error
					return nil
				})
				if err != nil {
					ackErr = err.Error()
				}
				if ackErr == "" || !strings.Contains(ackErr, tt.want) {
					t.Fatalf("want a refusal saying %q, got %q", tt.want, ackErr)
				}
			})
		}
		n := tc.nodes["east-1"]
		for _, key := range []string{"k1", "m0"} {
			if obj, err := n.Store().Get("default", []byte(key)); err != nil || !obj.IsEmpty() {
				t.Errorf("%s stored from a refused batch: %v %v", key, obj, err)
			}
		}
		// A well-formed batch from the same peer is merged: the refusals were
		// about the batches, not the connection.
		payload, _ := codec.Marshal([]any{0, "default", []any{item("k1", good), item("k2", good)}})
		if err := tr.Call(ctx(t), target.Listen, target.ID, &wan.Envelope{V: 1, Type: 56, Payload: codec.RawMessage(payload)}, func(*wan.Envelope) error { return nil }); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"k1", "k2"} {
			if obj, err := n.Store().Get("default", []byte(key)); err != nil || len(obj.Values()) != 1 {
				t.Errorf("%s after a good batch: %v %v", key, obj, err)
			}
		}
	})
}

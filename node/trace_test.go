package node_test

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/client"
)

// TestOneTraceCoversEveryRegion records the spans of every node and of
// the client and checks that one EACH_QUORUM put across three regions is
// one trace: client → coordinator → a replica call per local replica and a
// relay call per remote region → the relay's server span → its calls to
// the other replicas of its region → their server spans.
func TestOneTraceCoversEveryRegion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		tc := startCluster(t, clusterOpts{latency: 2 * time.Millisecond, tracer: tp})

		res, err := tc.client.Put(ctx(t), []byte("traced"), []byte("v"), &client.WriteOptions{Consistency: "EACH_QUORUM"})
		if err != nil {
			t.Fatal(err)
		}
		var root trace.SpanContext
		for _, s := range rec.Ended() {
			if s.Name() == "put default" && s.SpanKind() == trace.SpanKindClient {
				root = s.SpanContext()
			}
		}
		if !root.IsValid() {
			t.Fatal("no client span")
		}
		// The fan-out to the last replicas finishes after the answer: wait for
		// a replica.write server span on every node but the coordinator.
		var spans []sdktrace.ReadOnlySpan
		waitFor(t, func() error {
			spans = spans[:0]
			served := map[string]bool{}
			for _, s := range rec.Ended() {
				if s.SpanContext().TraceID() != root.TraceID() {
					continue
				}
				spans = append(spans, s)
				if s.SpanKind() == trace.SpanKindServer && (strings.HasPrefix(s.Name(), "replica.write ") || strings.HasPrefix(s.Name(), "relay.write ")) {
					served[strings.Fields(s.Name())[1]] = true
				}
			}
			if len(served) < 8 {
				return fmt.Errorf("replica server spans on %d of 8 non-coordinator nodes: %v", len(served), served)
			}
			ended := map[trace.SpanID]bool{}
			for _, s := range spans {
				ended[s.SpanContext().SpanID()] = true
			}
			for _, s := range spans {
				if s.Parent().IsValid() && !ended[s.Parent().SpanID()] {
					return fmt.Errorf("parent of %s not ended yet", s.Name())
				}
			}
			return nil
		})

		byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
		for _, s := range spans {
			byID[s.SpanContext().SpanID()] = s
		}
		parentName := func(s sdktrace.ReadOnlySpan) string {
			if p, ok := byID[s.Parent().SpanID()]; ok {
				return p.Name()
			}
			return "(root)"
		}
		var tree []string
		coordinator, relays := 0, map[string]bool{}
		for _, s := range spans {
			tree = append(tree, fmt.Sprintf("%s [%v] <- %s", s.Name(), s.SpanKind(), parentName(s)))
			switch {
			case s.Name() == "put default" && s.SpanKind() == trace.SpanKindServer:
				coordinator++
				if s.Parent().SpanID() != root.SpanID() {
					t.Errorf("coordinator span's parent is %s, want the client span", parentName(s))
				}
			case strings.HasPrefix(s.Name(), "relay.write ") && s.SpanKind() == trace.SpanKindServer:
				relays[strings.Fields(s.Name())[1]] = true
				if p := parentName(s); !strings.HasPrefix(p, "relay.write ") {
					t.Errorf("relay server span %s has parent %s, want the coordinator's relay call", s.Name(), p)
				}
			case strings.HasPrefix(s.Name(), "replica.write ") && s.SpanKind() == trace.SpanKindServer:
				if p := parentName(s); !strings.HasPrefix(p, "replica.write ") {
					t.Errorf("replica span %s has parent %s, want a replica call", s.Name(), p)
				}
			}
		}
		t.Logf("coordinator %s; span tree:\n%s", res.Coordinator, strings.Join(tree, "\n"))
		if coordinator != 1 {
			t.Errorf("%d coordinator spans, want 1", coordinator)
		}
		regions := map[string]bool{}
		for id := range relays {
			regions[strings.Split(id, "-")[0]] = true
		}
		if len(regions) != 2 || regions["east"] {
			t.Errorf("relay spans in regions %v, want west and central", regions)
		}
	})
}

// TestTraceContextTravelsWithTracingOff: nodes whose tracing is off still
// carry the caller's trace context, so what a write stores (its sibling's
// trace reference) names the trace of the client that traced it.
func TestTraceContextTravelsWithTracingOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, latency: 5 * time.Millisecond, clientTracer: tp})
		key := []byte("traced")
		if _, err := tc.client.Put(ctx(t), key, []byte("v"), &client.WriteOptions{Consistency: "ALL"}); err != nil {
			t.Fatal(err)
		}
		var put trace.TraceID
		for _, s := range rec.Ended() {
			if s.SpanKind() == trace.SpanKindClient && strings.HasPrefix(s.Name(), "put ") {
				put = s.SpanContext().TraceID()
			}
		}
		if !put.IsValid() {
			t.Fatal("no client span of the put")
		}
		for id, n := range tc.nodes {
			obj, err := n.Store().Get("default", key)
			if err != nil {
				t.Fatal(err)
			}
			if len(obj.Siblings) != 1 || len(obj.Siblings[0].Trace) != 24 || trace.TraceID(obj.Siblings[0].Trace[:16]) != put {
				t.Errorf("%s stores %+v, want one sibling naming trace %s", id, obj.Siblings, put)
			}
		}
	})
}

package otelsetup

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/meridian-kv/meridian/telemetry"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// TestJaegerEndToEnd sends a client → coordinator → replica trace through
// Setup's OTLP exporter, over both protocols, to a running Jaeger and reads
// it back from Jaeger's query API. It is opt-in: deploy/jaeger/smoke.sh
// starts Jaeger and runs it with MERIDIAN_JAEGER_QUERY set.
//
//	MERIDIAN_JAEGER_QUERY      query API base URL, e.g. http://127.0.0.1:16686 (required)
//	MERIDIAN_JAEGER_OTLP_HTTP  default http://127.0.0.1:4318
//	MERIDIAN_JAEGER_OTLP_GRPC  default http://127.0.0.1:4317
func TestJaegerEndToEnd(t *testing.T) {
	query := os.Getenv("MERIDIAN_JAEGER_QUERY")
	if query == "" {
		t.Skip("MERIDIAN_JAEGER_QUERY not set; run deploy/jaeger/smoke.sh")
	}
	endpoints := map[string]string{
		protocolHTTP: envOr("MERIDIAN_JAEGER_OTLP_HTTP", "http://127.0.0.1:4318"),
		protocolGRPC: envOr("MERIDIAN_JAEGER_OTLP_GRPC", "http://127.0.0.1:4317"),
	}
	for _, protocol := range []string{protocolHTTP, protocolGRPC} {
		t.Run(protocol, func(t *testing.T) {
			service := fmt.Sprintf("meridian-e2e-%d", time.Now().UnixNano())
			p, err := Setup(context.Background(), Config{
				ServiceName: service, NodeID: "n1", DC: "us-east", Rack: "r1",
				Getenv: envOf(map[string]string{
					"OTEL_EXPORTER_OTLP_ENDPOINT": endpoints[protocol],
					"OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
				}),
			})
			if err != nil {
				t.Fatal(err)
			}
			tracer := telemetry.Tracer(p.Tracer)
			ctx, client := tracer.Start(context.Background(), telemetry.SpanName("put", "users"),
				trace.WithSpanKind(trace.SpanKindClient),
				trace.WithAttributes(telemetry.DBSystem, telemetry.Operation("put"), telemetry.Namespace("users"), telemetry.Consistency("LOCAL_QUORUM")))
			// Across the wire, as the CBOR envelope carries it.
			tp, ts := telemetry.Inject(ctx)
			cctx, coord := tracer.Start(telemetry.Extract(context.Background(), tp, ts), telemetry.SpanName("put", "users"),
				trace.WithSpanKind(trace.SpanKindServer))
			_, replica := tracer.Start(cctx, "replica.put", trace.WithSpanKind(trace.SpanKindClient),
				trace.WithAttributes(telemetry.Node("n2"), telemetry.ReplicaDC("eu-west")))
			replica.End()
			coord.SetAttributes(telemetry.ReplicasAcked(map[string]int{"us-east": 2, "eu-west": 1})...)
			coord.End()
			client.End()
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := p.Shutdown(sctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}

			want := client.SpanContext().TraceID().String()
			var tr jaegerTrace
			deadline := time.Now().Add(20 * time.Second)
			for {
				traces, err := jaegerTraces(query, service)
				if err == nil && len(traces) == 1 && len(traces[0].Spans) == 3 {
					tr = traces[0]
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("trace %s of service %s not in Jaeger after 20s (last: %v, %v)", want, service, traces, err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if tr.TraceID != want {
				t.Errorf("Jaeger trace id %s, want %s", tr.TraceID, want)
			}
			tags := map[string]any{}
			for _, s := range tr.Spans {
				for _, tag := range s.Tags {
					tags[tag.Key] = tag.Value
				}
			}
			for k, v := range map[string]any{
				"db.system.name": "meridian", "db.namespace": "users",
				"meridian.replicas.acked": "eu-west=1,us-east=2", "meridian.replica.dc": "eu-west",
			} {
				if tags[k] != v {
					t.Errorf("tag %s = %v, want %v", k, tags[k], v)
				}
			}
			t.Logf("%s: trace %s with %d spans found in Jaeger under service %s", protocol, tr.TraceID, len(tr.Spans), service)
		})
	}
}

type jaegerTrace struct {
	TraceID string `json:"traceID"`
	Spans   []struct {
		OperationName string `json:"operationName"`
		Tags          []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
	} `json:"spans"`
}

func jaegerTraces(query, service string) ([]jaegerTrace, error) {
	u := query + "/api/traces?limit=20&service=" + url.QueryEscape(service)
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var body struct {
		Data []jaegerTrace `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	return body.Data, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

package otelsetup

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/meridian-kv/meridian/telemetry"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// envOf returns a Getenv that sees only vars.
func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func setup(t *testing.T, cfg Config) *Providers {
	t.Helper()
	p, err := Setup(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p
}

func TestSetupWithNothingConfiguredGivesNoopTracer(t *testing.T) {
	p := setup(t, Config{Getenv: envOf(nil)})
	_, span := p.Tracer.Tracer("t").Start(context.Background(), "op")
	defer span.End()
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Errorf("span from an unconfigured provider records (%v) or has ids (%v); want a no-op",
			span.IsRecording(), span.SpanContext())
	}
	if p.Meter == nil || p.Metrics == nil {
		t.Fatal("Meter and telemetry.Metrics must always be set")
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestSetupNoneDisablesTracingEvenWithEndpoint(t *testing.T) {
	p := setup(t, Config{Getenv: envOf(map[string]string{
		"OTEL_TRACES_EXPORTER":        "none",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
	})})
	_, span := p.Tracer.Tracer("t").Start(context.Background(), "op")
	if span.IsRecording() {
		t.Error("OTEL_TRACES_EXPORTER=none still records spans")
	}
}

func TestSetupConsoleExporterWritesSpans(t *testing.T) {
	var buf syncBuffer
	p := setup(t, Config{
		NodeID:  "n1",
		DC:      "us-east",
		Getenv:  envOf(map[string]string{"OTEL_TRACES_EXPORTER": "console"}),
		Console: &buf,
	})
	ctx, parent := telemetry.Tracer(p.Tracer).Start(context.Background(), telemetry.SpanName("put", "users"))
	_, child := telemetry.Tracer(p.Tracer).Start(ctx, "replica.put")
	child.SetAttributes(telemetry.ReplicasAcked(map[string]int{"us-east": 2})...)
	child.End()
	parent.End()
	if !parent.SpanContext().IsSampled() {
		t.Fatal("console exporter configured but span not sampled")
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	var spans []consoleSpan
	sc := bufio.NewScanner(bytes.NewReader(buf.Bytes()))
	for sc.Scan() {
		var s consoleSpan
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("console line %q: %v", sc.Text(), err)
		}
		spans = append(spans, s)
	}
	if len(spans) != 2 {
		t.Fatalf("console wrote %d spans, want 2:\n%s", len(spans), buf.Bytes())
	}
	byName := map[string]consoleSpan{spans[0].Name: spans[0], spans[1].Name: spans[1]}
	c, pa := byName["replica.put"], byName["put users"]
	if pa.TraceID != parent.SpanContext().TraceID().String() || c.TraceID != pa.TraceID {
		t.Errorf("trace ids: parent %s, child %s, want %s", pa.TraceID, c.TraceID, parent.SpanContext().TraceID())
	}
	if c.ParentSpanID != pa.SpanID {
		t.Errorf("child's parent = %q, want %q", c.ParentSpanID, pa.SpanID)
	}
	if pa.Service != "meridian" {
		t.Errorf("service = %q, want meridian", pa.Service)
	}
	if got := c.Attributes["meridian.replicas.acked"]; got != "us-east=2" {
		t.Errorf("meridian.replicas.acked = %v, want us-east=2", got)
	}
}

func TestSetupRejectsBadEnvironment(t *testing.T) {
	otlp := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for k, v := range otlp {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"unknown protocol", with("OTEL_EXPORTER_OTLP_PROTOCOL", "udp"), "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"http/json unsupported", with("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"), "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"traces protocol wins", with("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc-web"), "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{"unknown exporter", map[string]string{"OTEL_TRACES_EXPORTER": "otlp,zipkin"}, "OTEL_TRACES_EXPORTER"},
		{"endpoint without scheme", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"bad sampler", map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"},
		{"bad sampler ratio", map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG"},
		{"bad headers", with("OTEL_EXPORTER_OTLP_HEADERS", "novalue"), "OTEL_EXPORTER_OTLP_HEADERS"},
		{"bad resource attributes", map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "=x"}, "OTEL_RESOURCE_ATTRIBUTES"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Setup(context.Background(), Config{Getenv: envOf(tc.env)})
			if err == nil {
				_ = p.Shutdown(context.Background())
				t.Fatal("Setup succeeded, want an error")
			}
			var ee *EnvError
			if !errors.As(err, &ee) || ee.Name != tc.wantVar {
				t.Fatalf("Setup error = %v, want an *EnvError naming %s", err, tc.wantVar)
			}
		})
	}
}

func TestSetupSamplerFromEnvironment(t *testing.T) {
	for _, tc := range []struct {
		sampler, arg string
		want         bool
	}{
		{"", "", true}, // parentbased_always_on
		{"always_off", "", false},
		{"parentbased_always_off", "", false},
		{"traceidratio", "0", false},
		{"parentbased_traceidratio", "1", true},
	} {
		p := setup(t, Config{
			Getenv: envOf(map[string]string{
				"OTEL_TRACES_EXPORTER":    "console",
				"OTEL_TRACES_SAMPLER":     tc.sampler,
				"OTEL_TRACES_SAMPLER_ARG": tc.arg,
			}),
			Console: io.Discard,
		})
		_, span := p.Tracer.Tracer("t").Start(context.Background(), "op")
		if got := span.SpanContext().IsSampled(); got != tc.want {
			t.Errorf("sampler %q arg %q: sampled = %v, want %v", tc.sampler, tc.arg, got, tc.want)
		}
		span.End()
	}
}

func TestSetupDefaultSamplerFollowsRemoteParent(t *testing.T) {
	p := setup(t, Config{Getenv: envOf(map[string]string{"OTEL_TRACES_EXPORTER": "console"}), Console: io.Discard})
	notSampled := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	ctx := telemetry.Extract(context.Background(), notSampled, "")
	_, span := p.Tracer.Tracer("t").Start(ctx, "op")
	defer span.End()
	if span.SpanContext().IsSampled() {
		t.Error("parentbased_always_on sampled a child of an unsampled remote parent")
	}
}

func TestTraceEndpoint(t *testing.T) {
	for _, tc := range []struct {
		env      map[string]string
		protocol string
		want     string
	}{
		{map[string]string{}, protocolHTTP, ""},
		{map[string]string{envEndpoint: "http://127.0.0.1:4318"}, protocolHTTP, "http://127.0.0.1:4318/v1/traces"},
		{map[string]string{envEndpoint: "https://otel.example/base/"}, protocolHTTP, "https://otel.example/base/v1/traces"},
		{map[string]string{envEndpoint: "http://127.0.0.1:4317"}, protocolGRPC, "http://127.0.0.1:4317"},
		{map[string]string{envEndpoint: "http://a:4318", envTracesEndpoint: "http://b:4318/custom"}, protocolHTTP, "http://b:4318/custom"},
	} {
		got, err := traceEndpoint(env(envOf(tc.env)), tc.protocol)
		if err != nil || got != tc.want {
			t.Errorf("traceEndpoint(%v, %s) = %q, %v; want %q", tc.env, tc.protocol, got, err, tc.want)
		}
	}
}

// TestSetupOTLPHTTPExportsToEndpoint sends spans to a fake collector and
// checks the request the OTLP/HTTP exporter makes: path, headers, resource.
func TestSetupOTLPHTTPExportsToEndpoint(t *testing.T) {
	type got struct {
		path, auth string
		req        *collectortrace.ExportTraceServiceRequest
	}
	reqs := make(chan got, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g := got{r.URL.Path, r.Header.Get("Authorization"), &collectortrace.ExportTraceServiceRequest{}}
		if err := proto.Unmarshal(body, g.req); err != nil {
			t.Errorf("collector: decoding request: %v", err)
		}
		reqs <- g
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	p := setup(t, Config{
		NodeID: "n7", DC: "eu-west", Rack: "r2",
		Getenv: envOf(map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL,
			"OTEL_EXPORTER_OTLP_HEADERS":  "Authorization=Bearer%20abc",
			"OTEL_SERVICE_NAME":           "meridian-test",
		}),
	})
	_, span := telemetry.Tracer(p.Tracer).Start(context.Background(), "get users", trace.WithAttributes(telemetry.DBSystem))
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	var g got
	select {
	case g = <-reqs:
	default:
		t.Fatal("no export request reached the collector by the end of Shutdown")
	}
	if g.path != "/v1/traces" || g.auth != "Bearer abc" {
		t.Errorf("request path %q, Authorization %q; want /v1/traces, Bearer abc", g.path, g.auth)
	}
	rs := g.req.GetResourceSpans()
	if len(rs) != 1 || len(rs[0].GetScopeSpans()) != 1 || len(rs[0].GetScopeSpans()[0].GetSpans()) != 1 {
		t.Fatalf("want one resource with one span, got %v", rs)
	}
	res := map[string]string{}
	for _, kv := range rs[0].GetResource().GetAttributes() {
		res[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	for k, want := range map[string]string{
		"service.name": "meridian-test", "service.instance.id": "n7",
		"meridian.dc": "eu-west", "cloud.region": "eu-west", "meridian.rack": "r2",
	} {
		if res[k] != want {
			t.Errorf("resource %s = %q, want %q", k, res[k], want)
		}
	}
	if name := rs[0].GetScopeSpans()[0].GetSpans()[0].GetName(); name != "get users" {
		t.Errorf("span name %q, want %q", name, "get users")
	}
}

func TestSetupGRPCDoesNotDial(t *testing.T) {
	// Nothing listens on port 1: Setup must still succeed, because the
	// exporter connects lazily.
	p := setup(t, Config{Getenv: envOf(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
	})})
	_, span := p.Tracer.Tracer("t").Start(context.Background(), "op")
	if !span.IsRecording() {
		t.Error("gRPC exporter configured but span not recording")
	}
	// Not ended: nothing to export, so Shutdown is immediate.
}

// syncBuffer is a bytes.Buffer safe for the exporter goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

package telemetry

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestInjectExtractRoundTrip(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	ts, err := trace.ParseTraceState("meridian=dc1,other=x")
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := tp.Tracer("t").Start(context.Background(), "client")
	ctx = trace.ContextWithSpanContext(ctx, span.SpanContext().WithTraceState(ts))

	parent, state := Inject(ctx)
	if parent == "" {
		t.Fatal("Inject gave no traceparent for a recording span")
	}
	if state != "meridian=dc1,other=x" {
		t.Errorf("tracestate = %q", state)
	}

	// The other side of the wire: a fresh context, and a child span.
	remote := Extract(context.Background(), parent, state)
	got := trace.SpanContextFromContext(remote)
	if !got.IsRemote() || got.TraceID() != span.SpanContext().TraceID() ||
		got.SpanID() != span.SpanContext().SpanID() || !got.IsSampled() {
		t.Errorf("extracted %+v, want remote copy of %+v", got, span.SpanContext())
	}
	if got.TraceState().String() != state {
		t.Errorf("extracted tracestate %q, want %q", got.TraceState(), state)
	}
	_, child := tp.Tracer("t").Start(remote, "coordinator")
	child.End()
	span.End()

	ended := rec.Ended()
	if len(ended) != 2 || ended[0].Parent().SpanID() != span.SpanContext().SpanID() {
		t.Errorf("coordinator span's parent is not the client span")
	}
}

func TestInjectWithoutSpanAndExtractOfGarbage(t *testing.T) {
	if p, s := Inject(context.Background()); p != "" || s != "" {
		t.Errorf("Inject without a span = %q, %q; want empty", p, s)
	}
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"} {
		ctx := Extract(context.Background(), bad, "a=b")
		if trace.SpanContextFromContext(ctx).IsValid() {
			t.Errorf("Extract(%q) produced a valid span context", bad)
		}
	}
}

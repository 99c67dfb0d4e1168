package telemetry

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// StartQuiet hands out the span ctx holds when it records nothing (so
// the trace context travels on, with nothing allocated), and never a
// recording span, which the caller would end.
func TestStartQuiet(t *testing.T) {
	quiet := Tracer(nil)
	if !Noop(quiet) {
		t.Fatal("Tracer(nil) is not the no-op tracer")
	}

	// A remote parent, as Extract leaves it.
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), parent)
	got, span := StartQuiet(quiet, ctx)
	if got != ctx {
		t.Error("StartQuiet wrapped a context that holds a non-recording span")
	}
	if span.SpanContext().TraceID() != parent.TraceID() || span.IsRecording() {
		t.Errorf("span %v, recording %v: want the parent's context, not recording", span.SpanContext(), span.IsRecording())
	}
	if a := testing.AllocsPerRun(100, func() { StartQuiet(quiet, ctx) }); a != 0 {
		t.Errorf("StartQuiet allocated %v times", a)
	}
	// The same span context as the no-op tracer's own child would have.
	_, child := quiet.Start(ctx, "")
	if !child.SpanContext().Equal(span.SpanContext()) {
		t.Errorf("no-op child %v, StartQuiet %v", child.SpanContext(), span.SpanContext())
	}

	// A recording span of another tracer in ctx stays the caller's.
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	rctx, outer := tp.Tracer("test").Start(context.Background(), "outer")
	_, inner := StartQuiet(quiet, rctx)
	if inner == outer {
		t.Fatal("StartQuiet handed out a recording span")
	}
	inner.End()
	if !outer.IsRecording() || len(rec.Ended()) != 0 {
		t.Fatal("ending StartQuiet's span ended the recording span in ctx")
	}
	if inner.SpanContext().TraceID() != outer.SpanContext().TraceID() {
		t.Error("StartQuiet's span left the recording span's trace")
	}
	outer.End()
}

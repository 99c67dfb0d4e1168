package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracer returns Meridian's tracer on tp, or a no-op tracer for a nil tp, so
// packages that take an optional TracerProvider never check for nil.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(InstrumentationName, trace.WithSchemaURL(SchemaURL))
}

// Noop reports whether t is the no-op tracer (tracing off): its spans
// record nothing and carry no trace context, so a caller may start one
// without building its name and attributes.
func Noop(t trace.Tracer) bool {
	_, ok := t.(noop.Tracer)
	return ok
}

// StartQuiet is t.Start(ctx, "") for the no-op tracer t, without
// allocating: it returns ctx and the span ctx holds, which records nothing
// and carries the trace context a no-op child would. A recording span in
// ctx (another tracer's) is never handed out, since the caller ends the
// span it gets: a no-op child is started instead.
func StartQuiet(t trace.Tracer, ctx context.Context) (context.Context, trace.Span) {
	if span := trace.SpanFromContext(ctx); !span.IsRecording() {
		return ctx, span
	}
	return t.Start(ctx, "")
}

package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traceContext is the W3C Trace Context propagator
// (https://www.w3.org/TR/trace-context/). Meridian carries its two fields in
// the CBOR envelope rather than in HTTP headers, so they cross the wire as
// plain strings and never depend on the global propagator.
var traceContext propagation.TraceContext

const (
	traceparentHeader = "traceparent"
	tracestateHeader  = "tracestate"
)

// Inject returns the W3C traceparent and tracestate of the span in ctx, or
// two empty strings when ctx holds no valid span context.
func Inject(ctx context.Context) (traceparent, tracestate string) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return "", "" // the propagator writes nothing for it
	}
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c[traceparentHeader], c[tracestateHeader]
}

// Extract returns ctx carrying the remote span context described by
// traceparent and tracestate, so spans started from it become its children.
// Malformed or empty input leaves ctx unchanged: a bad trace header must
// never fail a request.
func Extract(ctx context.Context, traceparent, tracestate string) context.Context {
	if traceparent == "" {
		return ctx
	}
	c := propagation.MapCarrier{traceparentHeader: traceparent}
	if tracestate != "" {
		c[tracestateHeader] = tracestate
	}
	return traceContext.Extract(ctx, c)
}

package node

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/telemetry"
	"github.com/meridian-kv/meridian/wan"
)

// opName names node-to-node operations in spans and metrics.
func opName(t wan.MsgType) string {
	switch t {
	case typeReplicaWrite:
		return "replica.write"
	case typeRelayWrite:
		return "relay.write"
	case typeReplicaRead:
		return "replica.read"
	case typeRelayRead:
		return "relay.read"
	case typeDigestBatch:
		return "digest.batch"
	case typeRelayDigests:
		return "relay.digests"
	case typeReplicaBatch:
		return "replica.batch"
	case typeHintWrite:
		return "hint.write"
	case typeHintDeliver:
		return "hint.batch"
	case typePing:
		return "ping"
	case typeGrantPush:
		return "grant.push"
	case typeGrantSync:
		return "grant.sync"
	case api.TypePut:
		return "put"
	case api.TypeGet:
		return "get"
	case api.TypeInspect:
		return "inspect"
	case api.TypeStatus:
		return "status"
	case api.TypeRing:
		return "ring"
	case api.TypeReencrypt, typeReencryptNode:
		return "reencrypt"
	}
	return "unknown"
}

// startCall starts the client span of one node-to-node call and puts its
// context into the envelope, so the peer's spans join the same trace.
func (p *peers) startCall(ctx context.Context, peer memberInfo, env *wan.Envelope) (context.Context, trace.Span) {
	if env.Type == typePing || env.Type == typeGrantSync {
		return ctx, trace.SpanFromContext(context.Background()) // probes and grant digests are not traced
	}
	if telemetry.Noop(p.tracer) {
		// No span, but the caller's trace context still travels.
		ctx, span := telemetry.StartQuiet(p.tracer, ctx)
		env.Trace.Traceparent, env.Trace.Tracestate = telemetry.Inject(ctx)
		return ctx, span
	}
	op := opName(env.Type)
	ctx, span := p.tracer.Start(ctx, op+" "+peer.ID, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			telemetry.DBSystemNameKey.String(telemetry.SystemName),
			telemetry.Operation(op),
			telemetry.Node(peer.ID),
			telemetry.ReplicaDC(peer.DC),
			telemetry.ServerAddressKey.String(peer.Addr),
		))
	env.Trace.Traceparent, env.Trace.Tracestate = telemetry.Inject(ctx)
	return ctx, span
}

// endCall ends a call's span and records its latency.
func (p *peers) endCall(ctx context.Context, span trace.Span, t wan.MsgType, dc string, start time.Time, err error) {
	if t == typePing || t == typeGrantSync {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	d := time.Since(start)
	p.metrics.ObserveReplicaRPC(ctx, opName(t), dc, d)
	p.reqs.add("replica", dc, time.Now(), d)
}

// startServe starts the server span of a request stream, continuing the
// caller's trace from the envelope.
func (n *Node) startServe(ctx context.Context, req *wan.Envelope, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if req.Type == typePing {
		return telemetry.Extract(ctx, req.Trace.Traceparent, req.Trace.Tracestate), trace.SpanFromContext(context.Background())
	}
	return n.serveSpan(ctx, opName(req.Type), req.Trace.Traceparent, req.Trace.Tracestate, attrs...)
}

// serveSpan starts the server span of a request of operation op (opName),
// continuing the caller's trace from traceparent and tracestate: a
// stream's request (startServe) or one request of a batch (batch.go).
func (n *Node) serveSpan(ctx context.Context, op, traceparent, tracestate string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx = telemetry.Extract(ctx, traceparent, tracestate)
	if telemetry.Noop(n.tracer) {
		// The caller's trace context is kept (hints and siblings refer to
		// it); the name and attributes would be dropped.
		return telemetry.StartQuiet(n.tracer, ctx)
	}
	attrs = append(attrs,
		telemetry.DBSystemNameKey.String(telemetry.SystemName),
		telemetry.Operation(op),
		telemetry.Node(n.cfg.ID),
		telemetry.DC(n.cfg.DC))
	return n.tracer.Start(ctx, op+" "+n.cfg.ID, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
}

// storeSpan starts the span of store operation op on keyspace ks; with
// tracing off, none (telemetry.StartQuiet).
func (n *Node) storeSpan(ctx context.Context, op, ks string) trace.Span {
	if telemetry.Noop(n.tracer) {
		_, span := telemetry.StartQuiet(n.tracer, ctx)
		return span
	}
	_, span := n.tracer.Start(ctx, op, trace.WithAttributes(telemetry.Namespace(ks), telemetry.Node(n.cfg.ID)))
	return span
}

// batchSpan starts the internal span of a batch of items requests to
// peer, linked to the requests' own spans; with tracing off, none.
func (n *Node) batchSpan(ctx context.Context, op, peer string, links []trace.Link, items int) (context.Context, trace.Span) {
	if telemetry.Noop(n.tracer) {
		return telemetry.StartQuiet(n.tracer, ctx)
	}
	return n.tracer.Start(ctx, op, trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithLinks(links...), trace.WithAttributes(telemetry.Node(peer), attribute.Int("meridian.batch.items", items)))
}

// traceRef is the reference a hint keeps to the write that caused it: the
// trace id and span id (16 + 8 bytes), or nil outside a trace.
func traceRef(ctx context.Context) []byte {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	return append(tid[:], sid[:]...)
}

// linkTo turns a traceRef back into a span link (none if ref is empty).
func linkTo(ref []byte) []trace.Link {
	if len(ref) != 24 {
		return nil
	}
	var tid trace.TraceID
	var sid trace.SpanID
	copy(tid[:], ref[:16])
	copy(sid[:], ref[16:])
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	if !sc.IsValid() {
		return nil
	}
	return []trace.Link{{SpanContext: sc}}
}

// spanError marks a span failed.
func spanError(span trace.Span, err error) {
	if err == nil {
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

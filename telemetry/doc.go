// Package telemetry holds Meridian's instrumentation vocabulary on the
// OpenTelemetry API only: semantic attributes, the metric instruments, W3C
// trace-context propagation through the CBOR envelope, the admin handler
// (/metrics, /healthz) and the slog handler that stamps trace ids on log
// lines. Other packages take OTel API providers (no-op by default). The SDK
// and its exporters — providers built from the standard OTEL_* variables,
// the Prometheus exporter — live in the sub-package otelsetup, which only
// cmd imports, so the Go client links the API alone.
//
// In cmd:
//
//	p, err := otelsetup.Setup(ctx, otelsetup.Config{NodeID: id, DC: "us-east", Rack: "r1"})
//	if err != nil { ... }
//	defer p.Shutdown(context.Background())
//	go http.Serve(adminLn, telemetry.AdminHandler(p.Metrics, node.Health))
//	slog.SetDefault(slog.New(telemetry.NewLogHandler(os.Stderr, "json", slog.LevelInfo)))
//	n, err := node.New(node.Config{TracerProvider: p.Tracer, MeterProvider: p.Meter, ...})
//
// In an instrumented package, with providers that may be nil:
//
//	tracer := telemetry.Tracer(cfg.TracerProvider)
//	metrics, err := telemetry.NewMetrics(cfg.MeterProvider)
//	ctx, span := tracer.Start(ctx, telemetry.SpanName("put", ks), trace.WithSpanKind(trace.SpanKindServer),
//		trace.WithAttributes(telemetry.DBSystem, telemetry.Operation("put"), telemetry.Namespace(ks)))
//	defer span.End()
//	parent, state := telemetry.Inject(ctx) // into the CBOR envelope; telemetry.Extract on the other side
//
// Tracing is off unless OTEL_TRACES_EXPORTER or an OTLP endpoint is set (see
// otelsetup.Setup); metrics are always collected and served on /metrics.
package telemetry

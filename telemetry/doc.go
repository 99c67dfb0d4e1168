// Package telemetry holds Meridian's observability setup: OpenTelemetry
// trace and metric providers built from the standard OTEL_* variables, the
// Prometheus exporter for the admin endpoint, semantic attributes, and the
// slog handler that stamps trace ids on log lines. Other packages take OTel
// API providers (no-op by default); only cmd installs an SDK.
//
// In cmd:
//
//	p, err := telemetry.Setup(ctx, telemetry.Config{NodeID: id, DC: "us-east", Rack: "r1"})
//	if err != nil { ... }
//	defer p.Shutdown(context.Background())
//	go http.Serve(adminLn, telemetry.AdminHandler(p, node.Health))
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
// Setup); metrics are always collected and served on /metrics.
package telemetry

// Package otelsetup installs Meridian's OpenTelemetry SDK: a tracer
// provider exporting as the standard OTEL_* variables say (OTLP over HTTP or
// gRPC, or a console exporter; no-op when nothing is configured), a meter
// provider with a Prometheus exporter on a registry of its own, and the
// resource attributes that name the node (id, region, rack). Only cmd
// imports it; libraries use the API-only package telemetry.
//
//	p, err := otelsetup.Setup(ctx, otelsetup.Config{NodeID: "east-1", DC: "east", Rack: "r1"})
//	if err != nil { ... }
//	defer p.Shutdown(context.Background())
//	n, err := node.Start(cfg, node.Options{TracerProvider: p.Tracer, MeterProvider: p.Meter, MetricsHandler: p.Metrics})
package otelsetup

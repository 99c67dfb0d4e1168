package otelsetup

import (
	"context"
	"errors"
	"fmt"
	"github.com/meridian-kv/meridian/telemetry"
	"io"
	"net/http"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	promexporter "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// DefaultServiceName is service.name when neither Config.ServiceName nor
// OTEL_SERVICE_NAME sets one.
const DefaultServiceName = "meridian"

// Config describes the process whose telemetry Setup builds. The zero value
// is valid: service "meridian", no node identity, the process environment.
type Config struct {
	// ServiceName is service.name. Default: OTEL_SERVICE_NAME, else "meridian".
	ServiceName string
	// NodeID, DC and Rack become the resource attributes
	// service.instance.id, meridian.dc (also cloud.region) and meridian.rack;
	// empty ones are left out. They override OTEL_RESOURCE_ATTRIBUTES.
	NodeID, DC, Rack string
	// Getenv reads the OTEL_* variables. Default (nil): os.Getenv.
	// Exporter selection, protocol, endpoint, headers, sampler, service name
	// and resource attributes are read through it; the remaining exporter
	// settings (OTEL_EXPORTER_OTLP_*_TIMEOUT, _COMPRESSION, _CERTIFICATE,
	// OTEL_BSP_*) are read by the SDK from the process environment.
	Getenv func(string) string
	// Console receives spans when OTEL_TRACES_EXPORTER includes "console",
	// one JSON object per line. Default (nil): os.Stderr, because Meridian's
	// commands print their results (and --json) on stdout.
	Console io.Writer
}

// Providers are the OpenTelemetry providers Setup built. Hand Tracer and
// Meter to the packages that instrument themselves; serve Metrics on the
// admin port; call Shutdown before exit.
type Providers struct {
	// Tracer exports spans as the OTEL_* variables ask; it is a no-op
	// provider (spans do not record) when no exporter is configured.
	Tracer trace.TracerProvider
	// Meter is always an SDK provider whose only reader is a Prometheus
	// exporter on a registry of its own (never the global default one).
	Meter metric.MeterProvider
	// Metrics serves Meter's registry, plus the Go runtime and process
	// collectors, in the Prometheus exposition formats.
	Metrics http.Handler
	// Shutdown flushes buffered spans and stops the exporters. Later calls
	// do nothing and return nil.
	Shutdown func(context.Context) error
}

// Setup builds providers from cfg and the standard OTEL_* variables.
//
// Spans are exported when OTEL_TRACES_EXPORTER is "otlp" or "console" (or
// both, comma-separated), or, when it is unset, when
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set;
// "none", or nothing configured, gives a no-op TracerProvider. The OTLP
// protocol comes from OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
// OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" or "http/protobuf" (the default).
// The sampler comes from OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG,
// default parentbased_always_on. Spans go through a batch span processor.
//
// A value Setup cannot use is an *EnvError naming the variable. Setup
// connects to nothing: the OTLP exporters dial lazily, so a collector that
// is down costs dropped spans, never a failed start.
//
// Setup does not install global providers; cmd decides whether to call
// otel.SetTracerProvider and friends.
func Setup(ctx context.Context, cfg Config) (*Providers, error) {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	g := env(getenv)

	// Read every variable before building anything, so a configuration
	// mistake leaves nothing to clean up.
	wantOTLP, wantConsole, err := traceExporters(g)
	if err != nil {
		return nil, err
	}
	var otlpOpts otlpSettings
	if wantOTLP {
		if otlpOpts, err = readOTLPSettings(g); err != nil {
			return nil, err
		}
	}
	smp, err := sampler(g)
	if err != nil {
		return nil, err
	}
	res, err := newResource(ctx, cfg, g)
	if err != nil {
		return nil, err
	}

	meter, metricsHandler, err := newMeterProvider(res)
	if err != nil {
		return nil, err
	}
	p := &Providers{Meter: meter, Metrics: metricsHandler}
	stops := []func(context.Context) error{meter.Shutdown}

	if !wantOTLP && !wantConsole {
		p.Tracer = noop.NewTracerProvider()
	} else {
		opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(smp)}
		if wantOTLP {
			exp, err := newOTLPExporter(ctx, otlpOpts)
			if err != nil {
				_ = meter.Shutdown(ctx)
				return nil, err
			}
			opts = append(opts, sdktrace.WithBatcher(exp))
		}
		if wantConsole {
			w := cfg.Console
			if w == nil {
				w = os.Stderr
			}
			opts = append(opts, sdktrace.WithBatcher(newConsoleExporter(w)))
		}
		tp := sdktrace.NewTracerProvider(opts...)
		p.Tracer = tp
		// Spans first: flushing them may still record metrics.
		stops = append([]func(context.Context) error{tp.Shutdown}, stops...)
	}

	var once sync.Once
	p.Shutdown = func(ctx context.Context) error {
		var errs []error
		once.Do(func() {
			for _, stop := range stops {
				if err := stop(ctx); err != nil {
					errs = append(errs, err)
				}
			}
		})
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("telemetry: shutdown: %w", err)
		}
		return nil
	}
	return p, nil
}

// otlpSettings is what Setup resolved for the OTLP trace exporter.
type otlpSettings struct {
	protocol string
	endpoint string // "" = the exporter's default
	headers  map[string]string
}

func readOTLPSettings(g env) (otlpSettings, error) {
	var s otlpSettings
	var err error
	if s.protocol, err = traceProtocol(g); err != nil {
		return s, err
	}
	if s.endpoint, err = traceEndpoint(g, s.protocol); err != nil {
		return s, err
	}
	if s.headers, err = traceHeaders(g); err != nil {
		return s, err
	}
	return s, nil
}

func newOTLPExporter(ctx context.Context, s otlpSettings) (sdktrace.SpanExporter, error) {
	var exp sdktrace.SpanExporter
	var err error
	switch s.protocol {
	case protocolGRPC:
		var opts []otlptracegrpc.Option
		if s.endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(s.endpoint))
		}
		if s.headers != nil {
			opts = append(opts, otlptracegrpc.WithHeaders(s.headers))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	default:
		var opts []otlptracehttp.Option
		if s.endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(s.endpoint))
		}
		if s.headers != nil {
			opts = append(opts, otlptracehttp.WithHeaders(s.headers))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: otlp %s trace exporter: %w", s.protocol, err)
	}
	return exp, nil
}

// newResource describes this process: SDK identity, host, then
// OTEL_RESOURCE_ATTRIBUTES, then the node's own identity (which wins).
func newResource(ctx context.Context, cfg Config, g env) (*resource.Resource, error) {
	fromEnv, err := resourceAttrs(g)
	if err != nil {
		return nil, err
	}
	name := cfg.ServiceName
	if name == "" {
		name = g.get(envServiceName)
	}
	if name == "" {
		name = DefaultServiceName
	}
	own := []attribute.KeyValue{semconv.ServiceName(name)}
	if cfg.NodeID != "" {
		own = append(own, semconv.ServiceInstanceID(cfg.NodeID))
	}
	if cfg.DC != "" {
		own = append(own, telemetry.DC(cfg.DC), semconv.CloudRegion(cfg.DC))
	}
	if cfg.Rack != "" {
		own = append(own, telemetry.RackKey.String(cfg.Rack))
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(telemetry.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithAttributes(fromEnv...),
		resource.WithAttributes(own...),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}

// newMeterProvider builds the SDK meter provider with a Prometheus exporter
// registered on a fresh registry, and the handler that serves it.
func newMeterProvider(res *resource.Resource) (*sdkmetric.MeterProvider, http.Handler, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, nil, fmt.Errorf("telemetry: go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, nil, fmt.Errorf("telemetry: process collector: %w", err)
	}
	exp, err := promexporter.New(
		promexporter.WithRegisterer(reg),
		// Explicit, because the exporter's default is due to change:
		// meridian.request.duration (unit s) is scraped as
		// meridian_request_duration_seconds, counters get _total.
		promexporter.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(exp))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// One broken collector should not blank the whole scrape.
		ErrorHandling: promhttp.ContinueOnError,
	})
	return mp, h, nil
}

package otelsetup

import (
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The OTEL_* variables Setup reads through Config.Getenv. Names and meanings
// follow the OpenTelemetry specification ("Environment Variable
// Specification" and "OTLP Exporter Configuration").
const (
	envTracesExporter   = "OTEL_TRACES_EXPORTER"
	envEndpoint         = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint   = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envProtocol         = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol   = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envHeaders          = "OTEL_EXPORTER_OTLP_HEADERS"
	envTracesHeaders    = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
	envSampler          = "OTEL_TRACES_SAMPLER"
	envSamplerArg       = "OTEL_TRACES_SAMPLER_ARG"
	envServiceName      = "OTEL_SERVICE_NAME"
	envResourceAttrs    = "OTEL_RESOURCE_ATTRIBUTES"
	protocolGRPC        = "grpc"
	protocolHTTP        = "http/protobuf"
	defaultTracesPathV1 = "/v1/traces"
)

// EnvError reports an OTEL_* variable whose value Setup cannot use.
type EnvError struct {
	Name  string // the variable, e.g. "OTEL_EXPORTER_OTLP_PROTOCOL"
	Value string // its value
	Want  string // what would have been accepted
}

func (e *EnvError) Error() string {
	return "telemetry: " + e.Name + "=" + strconv.Quote(e.Value) + ": want " + e.Want
}

// env reads variables through an injectable getenv, trimming blanks.
type env func(string) string

func (g env) get(name string) string { return strings.TrimSpace(g(name)) }

// first returns the first of names that is set, and its name.
func (g env) first(names ...string) (name, value string) {
	for _, n := range names {
		if v := g.get(n); v != "" {
			return n, v
		}
	}
	return "", ""
}

// traceExporters decides which span exporters to build. An unset
// OTEL_TRACES_EXPORTER means "otlp" when an OTLP endpoint is configured and
// nothing otherwise: unlike the specification's default (otlp to
// localhost), a node started without telemetry settings sends nothing and
// logs no export failures.
func traceExporters(g env) (otlp, console bool, err error) {
	v := g.get(envTracesExporter)
	if v == "" {
		_, ep := g.first(envTracesEndpoint, envEndpoint)
		return ep != "", false, nil
	}
	for _, name := range strings.Split(v, ",") {
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "otlp":
			otlp = true
		case "console":
			console = true
		case "none":
		default:
			return false, false, &EnvError{envTracesExporter, v, `"otlp", "console", "none" or a comma-separated list of them`}
		}
	}
	return otlp, console, nil
}

// traceProtocol returns the OTLP protocol for traces; http/protobuf is the
// specification's default.
func traceProtocol(g env) (string, error) {
	name, v := g.first(envTracesProtocol, envProtocol)
	switch v {
	case "", protocolHTTP:
		return protocolHTTP, nil
	case protocolGRPC:
		return protocolGRPC, nil
	default:
		return "", &EnvError{name, v, `"grpc" or "http/protobuf" (http/json is not supported)`}
	}
}

// traceEndpoint returns the URL the trace exporter should use, or "" for
// the exporter's default (localhost). A signal-specific endpoint is used
// as-is; the generic one gets /v1/traces appended for HTTP, as the
// specification asks. gRPC ignores the path.
func traceEndpoint(g env, protocol string) (string, error) {
	name, v := g.first(envTracesEndpoint, envEndpoint)
	if v == "" {
		return "", nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", &EnvError{name, v, "a URL such as http://127.0.0.1:4318"}
	}
	if name == envEndpoint && protocol == protocolHTTP {
		u.Path = strings.TrimSuffix(u.Path, "/") + defaultTracesPathV1
	}
	return u.String(), nil
}

// traceHeaders merges OTEL_EXPORTER_OTLP_HEADERS with the traces-specific
// variable, which wins per key.
func traceHeaders(g env) (map[string]string, error) {
	h := map[string]string{}
	for _, name := range []string{envHeaders, envTracesHeaders} {
		kvs, err := parseKeyValues(name, g.get(name))
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			h[kv[0]] = kv[1]
		}
	}
	if len(h) == 0 {
		return nil, nil
	}
	return h, nil
}

// resourceAttrs parses OTEL_RESOURCE_ATTRIBUTES.
func resourceAttrs(g env) ([]attribute.KeyValue, error) {
	kvs, err := parseKeyValues(envResourceAttrs, g.get(envResourceAttrs))
	if err != nil {
		return nil, err
	}
	attrs := make([]attribute.KeyValue, 0, len(kvs))
	for _, kv := range kvs {
		attrs = append(attrs, attribute.String(kv[0], kv[1]))
	}
	return attrs, nil
}

// parseKeyValues parses the specification's "k1=v1,k2=v2" list with
// percent-encoded values.
func parseKeyValues(name, v string) ([][2]string, error) {
	if v == "" {
		return nil, nil
	}
	var out [][2]string
	for _, item := range strings.Split(v, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, val, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, &EnvError{name, v, "comma-separated key=value pairs"}
		}
		dec, err := url.PathUnescape(strings.TrimSpace(val))
		if err != nil {
			return nil, &EnvError{name, v, "percent-encoded values"}
		}
		out = append(out, [2]string{k, dec})
	}
	return out, nil
}

// sampler builds the sampler from OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG, default parentbased_always_on.
//
// The SDK's NewTracerProvider reads the same variables when no WithSampler
// option is given, but through os.Getenv (ignoring Config.Getenv) and it
// only reports a bad value to the global error handler before falling back
// to the default. Setup parses them itself, with the SDK's names and
// defaults, so a bad value is an error at startup.
func sampler(g env) (sdktrace.Sampler, error) {
	v := strings.ToLower(g.get(envSampler))
	arg := g.get(envSamplerArg)
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, &EnvError{envSamplerArg, arg, "a ratio between 0 and 1"}
		}
		return r, nil
	}
	switch v {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.TraceIDRatioBased(r), nil
	case "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	default:
		return nil, &EnvError{envSampler, v, "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio"}
	}
}

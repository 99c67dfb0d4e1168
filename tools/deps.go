//go:build tools

// Package tools pins modules that are about to be used, so go mod tidy keeps
// them while the code that imports them is written.
package tools

import (
	_ "github.com/cockroachdb/pebble/v2"
	_ "github.com/fxamacker/cbor/v2"
	_ "github.com/hashicorp/serf/serf"
	_ "github.com/quic-go/quic-go"
	_ "github.com/robfig/cron/v3"
	_ "github.com/spf13/cobra"
	_ "go.opentelemetry.io/otel"
	_ "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	_ "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	_ "go.opentelemetry.io/otel/exporters/prometheus"
	_ "go.opentelemetry.io/otel/sdk/metric"
	_ "go.opentelemetry.io/otel/sdk/trace"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/sync/errgroup"
)

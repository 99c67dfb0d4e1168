package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Log attribute keys added by the handler from NewLogHandler. They match
// the OpenTelemetry log data model's TraceId/SpanId in snake case, the form
// log pipelines (Loki, Elasticsearch) use to link to a trace.
const (
	LogTraceIDKey = "trace_id"
	LogSpanIDKey  = "span_id"
)

// Log formats accepted by NewLogHandler.
const (
	LogFormatJSON = "json"
	LogFormatText = "text"
)

// CheckLogFormat returns an error unless format is "json" or "text"; config
// validation calls it so a typo is reported instead of silently giving text.
func CheckLogFormat(format string) error {
	switch format {
	case LogFormatJSON, LogFormatText:
		return nil
	}
	return fmt.Errorf("telemetry: log format %q: want %q or %q", format, LogFormatJSON, LogFormatText)
}

// NewLogHandler returns a slog.Handler writing to w as JSON (format "json")
// or logfmt-style text (any other format; see CheckLogFormat) at level and
// above. Records logged with a context holding a valid span context — one
// being recorded, or a remote parent that was not sampled — get trace_id
// and span_id attributes, so a log line leads to its trace.
//
// The ids are added to the record; after WithGroup they land inside that
// group, as slog does for every record attribute.
func NewLogHandler(w io.Writer, format string, level slog.Level) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if format == LogFormatJSON {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return traceHandler{h}
}

// traceHandler decorates records with the ids of the span in their context.
type traceHandler struct{ next slog.Handler }

func (h traceHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r = r.Clone()
			r.AddAttrs(
				slog.String(LogTraceIDKey, sc.TraceID().String()),
				slog.String(LogSpanIDKey, sc.SpanID().String()),
			)
		}
	}
	return h.next.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.next.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.next.WithGroup(name)}
}

package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func TestLogHandlerAddsTraceIDs(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, span := tp.Tracer("t").Start(context.Background(), "op")
	defer span.End()
	sc := span.SpanContext()

	var buf bytes.Buffer
	log := slog.New(NewLogHandler(&buf, LogFormatJSON, slog.LevelInfo)).With("node", "n1")
	log.InfoContext(ctx, "write acked", "acked", 2)
	log.Info("no context")
	log.DebugContext(ctx, "below level")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2 (debug filtered):\n%s", len(lines), buf.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if first["trace_id"] != sc.TraceID().String() || first["span_id"] != sc.SpanID().String() {
		t.Errorf("line with span context = %v, want trace_id %s span_id %s", first, sc.TraceID(), sc.SpanID())
	}
	if first["node"] != "n1" || first["acked"] != float64(2) {
		t.Errorf("line lost its attributes: %v", first)
	}
	if _, ok := second["trace_id"]; ok {
		t.Errorf("line without span context has trace_id: %v", second)
	}
}

func TestLogHandlerTextFormat(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, span := tp.Tracer("t").Start(context.Background(), "op")
	defer span.End()

	var buf bytes.Buffer
	slog.New(NewLogHandler(&buf, LogFormatText, slog.LevelDebug)).DebugContext(ctx, "hello")
	if want := "trace_id=" + span.SpanContext().TraceID().String(); !strings.Contains(buf.String(), want) {
		t.Errorf("text line %q lacks %q", buf.String(), want)
	}
}

func TestCheckLogFormat(t *testing.T) {
	for f, ok := range map[string]bool{"json": true, "text": true, "": false, "JSON": false, "logfmt": false} {
		if err := CheckLogFormat(f); (err == nil) != ok {
			t.Errorf("CheckLogFormat(%q) = %v", f, err)
		}
	}
}

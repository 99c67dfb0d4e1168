package otelsetup

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// consoleExporter writes each span as one JSON object per line, for
// OTEL_TRACES_EXPORTER=console. (The SDK's stdouttrace exporter is a module
// of its own; this keeps go.mod to the exporters Meridian ships.)
type consoleExporter struct {
	mu      sync.Mutex
	enc     *json.Encoder
	stopped bool
}

func newConsoleExporter(w io.Writer) *consoleExporter {
	return &consoleExporter{enc: json.NewEncoder(w)}
}

type consoleEvent struct {
	Name       string         `json:"name"`
	Time       time.Time      `json:"time"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

type consoleSpan struct {
	Name         string         `json:"name"`
	TraceID      string         `json:"trace_id"`
	SpanID       string         `json:"span_id"`
	ParentSpanID string         `json:"parent_span_id,omitempty"`
	Kind         string         `json:"kind"`
	Start        time.Time      `json:"start"`
	DurationMS   float64        `json:"duration_ms"`
	Status       string         `json:"status,omitempty"`
	StatusDesc   string         `json:"status_description,omitempty"`
	Attributes   map[string]any `json:"attributes,omitempty"`
	Events       []consoleEvent `json:"events,omitempty"`
	Service      string         `json:"service,omitempty"`
	Scope        string         `json:"scope,omitempty"`
}

func (e *consoleExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return nil
	}
	for _, s := range spans {
		if err := ctx.Err(); err != nil {
			return err
		}
		out := consoleSpan{
			Name:       s.Name(),
			TraceID:    s.SpanContext().TraceID().String(),
			SpanID:     s.SpanContext().SpanID().String(),
			Kind:       s.SpanKind().String(),
			Start:      s.StartTime(),
			DurationMS: float64(s.EndTime().Sub(s.StartTime())) / float64(time.Millisecond),
			Attributes: attrMap(s.Attributes()),
			Scope:      s.InstrumentationScope().Name,
		}
		if p := s.Parent(); p.IsValid() {
			out.ParentSpanID = p.SpanID().String()
		}
		if st := s.Status(); st.Code != 0 {
			out.Status, out.StatusDesc = st.Code.String(), st.Description
		}
		if r := s.Resource(); r != nil {
			if v, ok := r.Set().Value("service.name"); ok {
				out.Service = v.AsString()
			}
		}
		for _, ev := range s.Events() {
			out.Events = append(out.Events, consoleEvent{ev.Name, ev.Time, attrMap(ev.Attributes)})
		}
		if err := e.enc.Encode(out); err != nil {
			return fmt.Errorf("telemetry: console exporter: %w", err)
		}
	}
	return nil
}

func (e *consoleExporter) Shutdown(context.Context) error {
	e.mu.Lock()
	e.stopped = true
	e.mu.Unlock()
	return nil
}

func attrMap(kvs []attribute.KeyValue) map[string]any {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

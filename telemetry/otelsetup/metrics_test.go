package otelsetup

import (
	"context"
	"errors"
	"github.com/meridian-kv/meridian/telemetry"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// scrape fetches /metrics through AdminHandler and parses it as the
// Prometheus text format, with legacy (strict) name validation.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

func labels(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, lp := range m.GetLabel() {
		l[lp.GetName()] = lp.GetValue()
	}
	return l
}

// find returns the metric of family name whose labels include want.
func find(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	fam, ok := fams[name]
	if !ok {
		t.Fatalf("no family %s in the scrape", name)
	}
next:
	for _, m := range fam.GetMetric() {
		l := labels(m)
		for k, v := range want {
			if l[k] != v {
				continue next
			}
		}
		return m
	}
	t.Fatalf("family %s has no metric with labels %v", name, want)
	return nil
}

func TestMetricsExposition(t *testing.T) {
	p := setup(t, Config{NodeID: "n1", DC: "us-east", Getenv: envOf(nil)})
	m, err := telemetry.NewMetrics(p.Meter)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m.ObserveRequest(ctx, "put", "LOCAL_QUORUM", "us-east", "", 3*time.Millisecond)
	m.ObserveRequest(ctx, "put", "LOCAL_QUORUM", "us-east", "", 300*time.Microsecond)
	m.ObserveReplicaRPC(ctx, "replica.put", "eu-west", 80*time.Millisecond)
	m.ObserveRequest(ctx, "get", "ONE", "us-east", "timeout", time.Second)
	for range 3 {
		m.ObserveReplicaRPC(ctx, "replica.put", "ap-south", time.Millisecond)
	}
	m.HintsStored.Add(ctx, 3, metric.WithAttributes(telemetry.HintTarget("n9")))
	m.HintsDelivered.Add(ctx, 1, metric.WithAttributes(telemetry.HintTarget("n9")))
	m.Errors.Add(ctx, 1, metric.WithAttributes(telemetry.ErrorKind("quorum")))
	m.QUICConnections.Add(ctx, 2)
	m.CountBatched(ctx, "replica.write", 5)
	m.CountBatched(ctx, "replica.write", 2)

	pending := map[string]int64{"n9": 2, "n4": 5}
	unregister, err := telemetry.RegisterGauge(p.Meter, "meridian.hints.pending", "{hint}", "Hints waiting for delivery.",
		func(observe func(int64, ...attribute.KeyValue)) {
			for target, n := range pending {
				observe(n, telemetry.HintTarget(target))
			}
		})
	if err != nil {
		t.Fatal(err)
	}

	fams := scrape(t, telemetry.AdminHandler(p.Metrics, nil))

	req := find(t, fams, "meridian_request_duration_seconds", map[string]string{
		"db_operation_name": "put", "meridian_consistency": "LOCAL_QUORUM", "meridian_dc": "us-east",
	})
	h := req.GetHistogram()
	if h.GetSampleCount() != 2 {
		t.Errorf("request duration count = %d, want 2", h.GetSampleCount())
	}
	var bounds []float64
	cum := map[float64]uint64{}
	for _, b := range h.GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
		cum[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	if len(bounds) != len(telemetry.LatencyBuckets)+1 || bounds[0] != 0.0001 || bounds[len(bounds)-2] != 10 || !math.IsInf(bounds[len(bounds)-1], 1) {
		t.Errorf("bucket bounds = %v, want %v and +Inf", bounds, telemetry.LatencyBuckets)
	}
	if cum[0.00025] != 0 || cum[0.0005] != 1 || cum[0.005] != 2 {
		t.Errorf("cumulative counts %v: want 300µs in le=0.0005 and 3ms in le=0.005", cum)
	}
	find(t, fams, "meridian_replica_rpc_duration_seconds", map[string]string{
		"db_operation_name": "replica.put", "meridian_replica_dc": "eu-west",
	})
	// Each attribute set is its own series (they are cached per set).
	if c := find(t, fams, "meridian_request_duration_seconds", map[string]string{
		"db_operation_name": "get", "meridian_consistency": "ONE", "meridian_dc": "us-east", "error_type": "timeout",
	}).GetHistogram().GetSampleCount(); c != 1 {
		t.Errorf("failed get count = %d, want 1", c)
	}
	if c := find(t, fams, "meridian_replica_rpc_duration_seconds", map[string]string{
		"db_operation_name": "replica.put", "meridian_replica_dc": "ap-south",
	}).GetHistogram().GetSampleCount(); c != 3 {
		t.Errorf("replica.put to ap-south count = %d, want 3", c)
	}
	if v := find(t, fams, "meridian_hints_stored_total", map[string]string{"meridian_hint_target": "n9"}).GetCounter().GetValue(); v != 3 {
		t.Errorf("meridian_hints_stored_total = %v, want 3", v)
	}
	find(t, fams, "meridian_hints_delivered_total", map[string]string{"meridian_hint_target": "n9"})
	if v := find(t, fams, "meridian_replica_batched_total", map[string]string{"db_operation_name": "replica.write"}).GetCounter().GetValue(); v != 7 {
		t.Errorf("meridian_replica_batched_total = %v, want 7", v)
	}
	find(t, fams, "meridian_errors_total", map[string]string{"error_type": "quorum"})
	if v := find(t, fams, "meridian_quic_connections", nil).GetGauge().GetValue(); v != 2 {
		t.Errorf("meridian_quic_connections = %v, want 2", v)
	}
	if v := find(t, fams, "meridian_hints_pending", map[string]string{"meridian_hint_target": "n4"}).GetGauge().GetValue(); v != 5 {
		t.Errorf("meridian_hints_pending{target=n4} = %v, want 5", v)
	}
	ti := find(t, fams, "target_info", map[string]string{"service_instance_id": "n1", "meridian_dc": "us-east"})
	if labels(ti)["service_name"] != "meridian" {
		t.Errorf("target_info labels %v", labels(ti))
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("Go runtime collector missing from the scrape")
	}

	unregister()
	unregister() // twice is fine
	if fam, ok := scrape(t, telemetry.AdminHandler(p.Metrics, nil))["meridian_hints_pending"]; ok && len(fam.GetMetric()) > 0 {
		t.Errorf("gauge still reported after unregister: %v", fam)
	}
}

func TestNewMetricsWithNilProviderIsNoop(t *testing.T) {
	m, err := telemetry.NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveRequest(context.Background(), "get", "ONE", "x", "timeout", time.Second)
	m.QUICConnections.Add(context.Background(), 1)
	unregister, err := telemetry.RegisterGauge(nil, "g", "1", "", func(func(int64, ...attribute.KeyValue)) {})
	if err != nil {
		t.Fatal(err)
	}
	unregister()
}

func TestAdminHealthz(t *testing.T) {
	p := setup(t, Config{Getenv: envOf(nil)})
	var down atomic.Bool
	srv := httptest.NewServer(telemetry.AdminHandler(p.Metrics, func() error {
		if down.Load() {
			return errors.New("store: not open")
		}
		return nil
	}))
	defer srv.Close()

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("healthy: %d %q", code, body)
	}
	down.Store(true)
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "store: not open") {
		t.Errorf("unhealthy: %d %q", code, body)
	}
	if code, _ := get("/metrics"); code != 200 {
		t.Errorf("/metrics: %d", code)
	}
	if code, _ := get("/other"); code != 404 {
		t.Errorf("/other: %d, want 404", code)
	}
}

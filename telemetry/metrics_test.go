package telemetry

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// The per-request recordings allocate nothing once their attribute set is
// cached, and still record under it.
func TestRecordingsDoNotAllocate(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	m, err := NewMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	record := func() {
		m.ObserveRequest(ctx, "put", "LOCAL_QUORUM", "east", "", time.Millisecond)
		m.ObserveReplicaRPC(ctx, "replica.write", "west", time.Millisecond)
		m.CountBatched(ctx, "replica.write", 3)
		m.CountSent(ctx, "west", 100)
	}
	record()
	if a := testing.AllocsPerRun(100, record); a != 0 {
		t.Errorf("recording allocated %v times per request", a)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			switch d := mt.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if v, ok := p.Attributes.Value(DBOperationNameKey); ok && v.AsString() == "replica.write" {
						got[mt.Name] += p.Value
					}
					if v, ok := p.Attributes.Value(ReplicaDCKey); ok && v.AsString() == "west" {
						got[mt.Name] += p.Value
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if v, ok := p.Attributes.Value(DCKey); ok && v.AsString() == "east" {
						got[mt.Name] += int64(p.Count)
					}
					if v, ok := p.Attributes.Value(ReplicaDCKey); ok && v.AsString() == "west" {
						got[mt.Name] += int64(p.Count)
					}
				}
			}
		}
	}
	if len(got) != 4 {
		t.Fatalf("recorded %v, want the four instruments", got)
	}
	for name, n := range got {
		want := int64(102)
		switch name {
		case "meridian.replica.batched":
			want *= 3
		case "meridian.wan.sent":
			want *= 100
		}
		if n != want {
			t.Errorf("%s counted %d, want %d", name, n, want)
		}
	}
}

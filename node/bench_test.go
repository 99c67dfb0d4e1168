package node_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/version"
)

// Benchmarks of the whole request path: client → coordinator → replicas,
// over real QUIC and Pebble (in-memory filesystem), with the WAN emulator.
// Run: go test -run '^$' -bench . -benchtime 2s ./node

func benchCluster(b *testing.B, latency time.Duration) *realCluster {
	return startRealCluster(b, clusterOpts{latency: latency})
}

// BenchmarkPutTracing compares a LOCAL_QUORUM put with tracing off (no-op
// provider, the default when no OTEL_* variable is set) and with every
// request sampled and exported through a batch processor (to an exporter
// that discards, so only Meridian's and the SDK's cost is measured).
func BenchmarkPutTracing(b *testing.B) {
	for _, mode := range []string{"off", "always_on"} {
		b.Run(mode, func(b *testing.B) {
			o := clusterOpts{regions: []string{"east", "west"}, latency: 40 * time.Millisecond}
			if mode == "always_on" {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				defer tp.Shutdown(context.Background())
				o.tracer = tp
			}
			tc := startRealCluster(b, o)
			val := make([]byte, 1024)
			opts := &client.WriteOptions{Consistency: "LOCAL_QUORUM"}
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := tc.client.Put(ctx, fmt.Appendf(nil, "t-%d", i), val, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPutLocalQuorum is a local put: LOCAL_QUORUM acks come from the
// coordinator's region, so the WAN does not add to it.
func BenchmarkPutLocalQuorum(b *testing.B) {
	benchPut(b, "LOCAL_QUORUM", 40*time.Millisecond)
}

// BenchmarkPutEachQuorum is a cross-region put: it waits for a quorum in
// every region, so it costs at least one WAN round trip.
func BenchmarkPutEachQuorum(b *testing.B) {
	benchPut(b, "EACH_QUORUM", 40*time.Millisecond)
}

func benchPut(b *testing.B, level string, latency time.Duration) {
	tc := benchCluster(b, latency)
	val := make([]byte, 1024)
	opts := &client.WriteOptions{Consistency: level}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := tc.client.Put(ctx, fmt.Appendf(nil, "bench-%d", i), val, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetLocalQuorum reads keys written beforehand.
func BenchmarkGetLocalQuorum(b *testing.B) {
	tc := benchCluster(b, 40*time.Millisecond)
	ctx := context.Background()
	const keys = 100
	for i := range keys {
		if _, err := tc.client.Put(ctx, fmt.Appendf(nil, "g-%d", i), make([]byte, 1024), &client.WriteOptions{Consistency: "ALL"}); err != nil {
			b.Fatal(err)
		}
	}
	opts := &client.ReadOptions{Consistency: "LOCAL_QUORUM"}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := tc.client.Get(ctx, fmt.Appendf(nil, "g-%d", i%keys), opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutP99DuringRepair measures the foreground cost of repair: the
// p99 latency of LOCAL_QUORUM puts with the cluster idle, and while
// repairs run back to back (the first one copying 5000 keys that only one
// west replica holds to every other replica). Compare the two p99-ms
// figures of one run.
func BenchmarkPutP99DuringRepair(b *testing.B) {
	for _, mode := range []string{"idle", "repairing"} {
		b.Run(mode, func(b *testing.B) {
			tc := startRealCluster(b, clusterOpts{regions: []string{"east", "west"}, latency: 2 * time.Millisecond})
			seed := tc.nodes["west-1"]
			for i := range 5000 {
				obj := version.New().Update(nil, "west-1", version.Write{Value: make([]byte, 256)})
				if _, _, err := seed.Store().Merge("default", fmt.Appendf(nil, "seed-%d", i), obj); err != nil {
					b.Fatal(err)
				}
			}
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan struct{})
			repairs := 0
			go func() {
				defer close(done)
				for ctx.Err() == nil && mode == "repairing" {
					if _, err := tc.client.Repair(ctx, nil, nil); err == nil {
						repairs++
					}
				}
			}()
			val := make([]byte, 1024)
			opts := &client.WriteOptions{Consistency: "LOCAL_QUORUM"}
			var lat []time.Duration
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				if _, err := tc.client.Put(context.Background(), fmt.Appendf(nil, "p-%d", i), val, opts); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			stop()
			<-done
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			if mode == "repairing" {
				b.ReportMetric(float64(repairs), "repairs")
			}
		})
	}
}

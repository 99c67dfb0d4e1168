package telemetry

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// InstrumentationName is the instrumentation scope of Meridian's tracers
// and meters.
const InstrumentationName = "github.com/meridian-kv/meridian"

// LatencyBuckets are the histogram boundaries, in seconds, of Meridian's
// latency histograms: 100µs (a local Pebble write without sync) to 10s (a
// request stuck behind a WAN timeout) in 1-2.5-5 steps, 16 boundaries. A
// LAN quorum lands in the 1-10 ms buckets, a cross-region one in
// 25-250 ms, so both are resolved.
var LatencyBuckets = []float64{
	0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05,
	0.1, 0.25, 0.5,
	1, 2.5, 5,
	10,
}

// Metrics are Meridian's instruments. Build them once per process with
// NewMetrics and share them; instruments are safe for concurrent use.
type Metrics struct {
	// RequestDuration is the coordinator-side latency of a client request:
	// "meridian.request.duration", seconds; attributes db.operation.name,
	// meridian.consistency, meridian.dc (coordinator's datacenter), and
	// error.type when the request failed.
	RequestDuration metric.Float64Histogram
	// ReplicaRPCDuration is the latency of one node-to-node call:
	// "meridian.replica.rpc.duration", seconds; attributes
	// db.operation.name and meridian.replica.dc (destination datacenter).
	ReplicaRPCDuration metric.Float64Histogram
	// HintsStored, HintsDelivered and HintsDropped count hints
	// ("meridian.hints.stored", ".delivered", ".dropped"); attribute
	// meridian.hint.target, the node the hint is for.
	HintsStored, HintsDelivered, HintsDropped metric.Int64Counter
	// Errors counts failures: "meridian.errors"; attribute error.type (the
	// kind, e.g. "quorum", "timeout", "decode").
	Errors metric.Int64Counter
	// QUICConnections is the number of open QUIC connections:
	// "meridian.quic.connections".
	QUICConnections metric.Int64UpDownCounter
	// RepairRanges, RepairKeysFixed and RepairBytes count anti-entropy
	// repair work ("meridian.repair.ranges", ".keys_fixed", ".bytes");
	// attribute meridian.replica.dc is the other datacenter of the pair
	// (for bytes: the destination region).
	RepairRanges, RepairKeysFixed, RepairBytes metric.Int64Counter
	// TombstonesCollected counts tombstones removed once repair had
	// reached every replica ("meridian.tombstones.collected").
	TombstonesCollected metric.Int64Counter
	// WANBytesSent counts the bytes of the messages a node sent to other
	// nodes and to clients ("meridian.wan.sent", bytes; application bytes
	// before QUIC framing and encryption); attribute meridian.replica.dc,
	// the destination's region ("client" for replies to clients).
	WANBytesSent metric.Int64Counter
	// ReadsSpares counts the replicas a read asked beyond the ones
	// its level needs ("meridian.reads.spares"); attribute
	// meridian.replica.dc, the spare's datacenter, and meridian.reason:
	// "failed" (a replica answered with an error) or "late" (the answers
	// took longer than the datacenter's replicas usually do).
	ReadsSpares metric.Int64Counter
	// ReplicaBatched counts the replica writes and reads that went to
	// their replica in a batch ("meridian.replica.batched"); attribute
	// db.operation.name, replica.write, replica.read or replica.digest
	// (digest reads). Over the count of
	// "meridian.replica.rpc.duration" for replica.batch it is the mean
	// batch size.
	ReplicaBatched metric.Int64Counter
	// ReadsDigestMismatches counts the replicas whose digest a read could
	// not match with the coordinator's own copy, so it asked them for
	// their object ("meridian.reads.digest_mismatches"); attribute
	// meridian.reason: "differs" (the copies differ: read repair
	// follows) or "unmatched" (the coordinator's own read failed).
	ReadsDigestMismatches metric.Int64Counter

	// options caches the attribute sets of the per-request recordings
	// (building one sorts and allocates, on every request otherwise);
	// attrKey -> *measureOption, at most maxCachedOptions.
	options sync.Map
	cached  atomic.Int64
}

type attrKey struct{ kind, op, a, b, c string }

// maxCachedOptions bounds the cached attribute sets: consistency levels
// are the clients' to choose (per-region vectors).
const maxCachedOptions = 4096

// option returns the cached measurement option of k, built by attrs once.
// It comes as the slices Record and Add take, so that passing it builds no
// variadic argument.
func (m *Metrics) option(k attrKey, attrs func() []attribute.KeyValue) *measureOption {
	if o, ok := m.options.Load(k); ok {
		return o.(*measureOption)
	}
	opt := metric.WithAttributes(attrs()...)
	o := &measureOption{record: []metric.RecordOption{opt}, add: []metric.AddOption{opt}}
	if m.cached.Load() < maxCachedOptions {
		if _, loaded := m.options.LoadOrStore(k, o); !loaded {
			m.cached.Add(1)
		}
	}
	return o
}

// measureOption is one attribute set, as Record's and Add's options.
type measureOption struct {
	record []metric.RecordOption
	add    []metric.AddOption
}

// NewMetrics creates Meridian's instruments on mp; a nil mp gives no-op
// instruments, so callers never check for nil.
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	m := meter(mp)
	var (
		ms  Metrics
		err error
	)
	hist := func(name, desc string) metric.Float64Histogram {
		if err != nil {
			return nil
		}
		var h metric.Float64Histogram
		h, err = m.Float64Histogram(name,
			metric.WithUnit("s"),
			metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(LatencyBuckets...))
		return h
	}
	counter := func(name, unit, desc string) metric.Int64Counter {
		if err != nil {
			return nil
		}
		var c metric.Int64Counter
		c, err = m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		return c
	}
	ms.RequestDuration = hist("meridian.request.duration",
		"Duration of client requests at the coordinator, by operation, consistency level and datacenter.")
	ms.ReplicaRPCDuration = hist("meridian.replica.rpc.duration",
		"Duration of node-to-node replica calls, by operation and destination datacenter.")
	ms.HintsStored = counter("meridian.hints.stored", "{hint}", "Hints stored for unavailable replicas.")
	ms.HintsDelivered = counter("meridian.hints.delivered", "{hint}", "Hints delivered to their target.")
	ms.HintsDropped = counter("meridian.hints.dropped", "{hint}", "Hints dropped (too old, over the byte limit, or target gone).")
	ms.Errors = counter("meridian.errors", "{error}", "Errors, by kind.")
	ms.RepairRanges = counter("meridian.repair.ranges", "{range}", "Token ranges repaired between a pair of datacenters.")
	ms.RepairKeysFixed = counter("meridian.repair.keys_fixed", "{key}", "Keys repair merged into a replica that lacked part of them.")
	ms.RepairBytes = counter("meridian.repair.bytes", "By", "Bytes of repair traffic, by destination region.")
	ms.TombstonesCollected = counter("meridian.tombstones.collected", "{tombstone}", "Tombstones collected after repair reached every replica of their key.")
	ms.WANBytesSent = counter("meridian.wan.sent", "By", "Bytes of messages sent to other nodes and to clients, by destination region.")
	ms.ReadsSpares = counter("meridian.reads.spares", "{replica}", "Replicas a read asked beyond those its level needs, after a failure or a late answer.")
	ms.ReadsDigestMismatches = counter("meridian.reads.digest_mismatches", "{replica}", "Replicas whose digest a read could not match with the coordinator's own copy, so it asked them for the object.")
	ms.ReplicaBatched = counter("meridian.replica.batched", "{request}", "Replica writes and reads sent to their replica in a batch, by operation.")
	if err == nil {
		ms.QUICConnections, err = m.Int64UpDownCounter("meridian.quic.connections",
			metric.WithUnit("{connection}"),
			metric.WithDescription("Open QUIC connections."))
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: metrics: %w", err)
	}
	return &ms, nil
}

// ObserveRequest records one client request's duration. errKind is "" for
// success, else the error.type value.
func (m *Metrics) ObserveRequest(ctx context.Context, op, consistency, dc, errKind string, d time.Duration) {
	o := m.option(attrKey{"request", op, consistency, dc, errKind}, func() []attribute.KeyValue {
		attrs := []attribute.KeyValue{Operation(op), Consistency(consistency), DC(dc)}
		if errKind != "" {
			attrs = append(attrs, ErrorKind(errKind))
		}
		return attrs
	})
	m.RequestDuration.Record(ctx, d.Seconds(), o.record...)
}

// ObserveReplicaRPC records one node-to-node call to a replica in dc.
func (m *Metrics) ObserveReplicaRPC(ctx context.Context, op, dc string, d time.Duration) {
	o := m.option(attrKey{kind: "replica", op: op, a: dc}, func() []attribute.KeyValue {
		return []attribute.KeyValue{Operation(op), ReplicaDC(dc)}
	})
	m.ReplicaRPCDuration.Record(ctx, d.Seconds(), o.record...)
}

// CountBatched counts n replica requests of operation op sent in one batch.
func (m *Metrics) CountBatched(ctx context.Context, op string, n int) {
	o := m.option(attrKey{kind: "batched", op: op}, func() []attribute.KeyValue {
		return []attribute.KeyValue{Operation(op)}
	})
	m.ReplicaBatched.Add(ctx, int64(n), o.add...)
}

// CountSent counts bytes of messages sent to region dc ("client" for
// replies to clients).
func (m *Metrics) CountSent(ctx context.Context, dc string, bytes int) {
	o := m.option(attrKey{kind: "sent", a: dc}, func() []attribute.KeyValue {
		return []attribute.KeyValue{ReplicaDC(dc)}
	})
	m.WANBytesSent.Add(ctx, int64(bytes), o.add...)
}

// RegisterGauge registers an observable int64 gauge named name on mp (nil:
// no-op). At each collection (each Prometheus scrape) cb is called and
// reports the current values through observe, once per attribute set — for
// example the pending hints per target:
//
//	unregister, err := telemetry.RegisterGauge(mp, "meridian.hints.pending", "{hint}",
//		"Hints waiting for delivery.", func(observe func(int64, ...attribute.KeyValue)) {
//			for target, n := range store.PendingHints() {
//				observe(n, telemetry.HintTarget(target))
//			}
//		})
//
// cb runs on the collecting goroutine, must be safe for concurrent use with
// the rest of the program, and must not block. unregister stops the
// callback (the instrument then reports nothing); it is safe to call more
// than once.
func RegisterGauge(mp metric.MeterProvider, name, unit, desc string, cb func(observe func(v int64, attrs ...attribute.KeyValue))) (unregister func(), err error) {
	m := meter(mp)
	g, err := m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	if err != nil {
		return nil, fmt.Errorf("telemetry: gauge %s: %w", name, err)
	}
	return register(m, g, name, cb)
}

// RegisterCounter is RegisterGauge for a count that only grows, kept by
// someone else (exported as a Prometheus counter): cb observes its total.
func RegisterCounter(mp metric.MeterProvider, name, unit, desc string, cb func(observe func(v int64, attrs ...attribute.KeyValue))) (unregister func(), err error) {
	m := meter(mp)
	c, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	if err != nil {
		return nil, fmt.Errorf("telemetry: counter %s: %w", name, err)
	}
	return register(m, c, name, cb)
}

func register(m metric.Meter, g metric.Int64Observable, name string, cb func(observe func(v int64, attrs ...attribute.KeyValue))) (unregister func(), err error) {
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		cb(func(v int64, attrs ...attribute.KeyValue) {
			o.ObserveInt64(g, v, metric.WithAttributes(attrs...))
		})
		return nil
	}, g)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %s: %w", name, err)
	}
	return func() { _ = reg.Unregister() }, nil
}

// meter returns Meridian's meter on mp, or a no-op one for a nil mp.
func meter(mp metric.MeterProvider) metric.Meter {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	return mp.Meter(InstrumentationName)
}

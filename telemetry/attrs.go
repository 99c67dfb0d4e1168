package telemetry

import (
	"sort"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// SchemaURL is the semantic-conventions schema Meridian's attributes follow;
// it matches the one the SDK's resource detectors use, so resources merge.
const SchemaURL = semconv.SchemaURL

// SystemName is the value of db.system.name on every Meridian span.
const SystemName = "meridian"

// Attribute keys. Keys that exist in the OpenTelemetry semantic conventions
// (database client spans, stable since semconv 1.33) are taken from there;
// the meridian.* keys are Meridian's own.
const (
	// DBSystemNameKey identifies the database product: always "meridian".
	DBSystemNameKey = semconv.DBSystemNameKey
	// DBOperationNameKey is the request kind: "get", "put", "delete",
	// and for node-to-node calls the replica operation ("replica.put").
	DBOperationNameKey = semconv.DBOperationNameKey
	// DBNamespaceKey is the keyspace.
	DBNamespaceKey = semconv.DBNamespaceKey
	// ServerAddressKey and ServerPortKey name the node a client or
	// coordinator talks to.
	ServerAddressKey = semconv.ServerAddressKey
	ServerPortKey    = semconv.ServerPortKey
	// ErrorTypeKey classifies a failure (a sentinel's short name, such as
	// "quorum" or "timeout"); it is the "kind" label of meridian.errors.
	ErrorTypeKey = semconv.ErrorTypeKey

	// DCKey is a datacenter: on request spans and metrics the
	// coordinator's, as a resource attribute the node's own.
	DCKey = attribute.Key("meridian.dc")
	// RackKey is the node's rack (resource attribute).
	RackKey = attribute.Key("meridian.rack")
	// NodeKey is a node id, for example the replica a span talks to.
	NodeKey = attribute.Key("meridian.node")
	// ReplicaDCKey is the datacenter of the replica a node-to-node call goes
	// to (the "destination dc" of meridian.replica.rpc.duration).
	ReplicaDCKey = attribute.Key("meridian.replica.dc")
	// ConsistencyKey is the consistency level asked for: "ONE",
	// "LOCAL_QUORUM", ... or, for an explicit per-DC map, its canonical
	// form "us-east=2,eu-west=1" (see FormatPerDC).
	ConsistencyKey = attribute.Key("meridian.consistency")
	// ReplicasRequiredKey and ReplicasAckedKey carry per-DC replica counts;
	// see ReplicasRequired and ReplicasAcked for the encoding.
	ReplicasRequiredKey = attribute.Key("meridian.replicas.required")
	ReplicasAckedKey    = attribute.Key("meridian.replicas.acked")
	// SiblingsKey is the number of siblings a read returned.
	SiblingsKey = attribute.Key("meridian.siblings")
	// HintTargetKey is the node a hint is meant for (the "target" label of
	// the meridian.hints.* metrics).
	HintTargetKey = attribute.Key("meridian.hint.target")
	// ReasonKey says why a read asked a spare replica: "failed" or
	// "late" (the meridian.reads.spares metric).
	ReasonKey = attribute.Key("meridian.reason")
)

// DBSystem is the db.system.name attribute every Meridian span carries.
var DBSystem = DBSystemNameKey.String(SystemName)

// Operation returns db.operation.name.
func Operation(op string) attribute.KeyValue { return DBOperationNameKey.String(op) }

// Namespace returns db.namespace, the keyspace.
func Namespace(keyspace string) attribute.KeyValue { return DBNamespaceKey.String(keyspace) }

// ServerAddress returns server.address and, when port > 0, server.port.
func ServerAddress(host string, port int) []attribute.KeyValue {
	if port <= 0 {
		return []attribute.KeyValue{ServerAddressKey.String(host)}
	}
	return []attribute.KeyValue{ServerAddressKey.String(host), ServerPortKey.Int(port)}
}

// DC returns meridian.dc.
func DC(dc string) attribute.KeyValue { return DCKey.String(dc) }

// ReplicaDC returns meridian.replica.dc.
func ReplicaDC(dc string) attribute.KeyValue { return ReplicaDCKey.String(dc) }

// Node returns meridian.node.
func Node(id string) attribute.KeyValue { return NodeKey.String(id) }

// Consistency returns meridian.consistency.
func Consistency(level string) attribute.KeyValue { return ConsistencyKey.String(level) }

// Siblings returns meridian.siblings.
func Siblings(n int) attribute.KeyValue { return SiblingsKey.Int(n) }

// HintTarget returns meridian.hint.target.
func HintTarget(node string) attribute.KeyValue { return HintTargetKey.String(node) }

// ErrorKind returns error.type, the "kind" of a counted error.
func ErrorKind(kind string) attribute.KeyValue { return ErrorTypeKey.String(kind) }

// ReplicasRequired encodes the per-DC replica counts a request needed.
// See ReplicasAcked for the encoding.
func ReplicasRequired(perDC map[string]int) []attribute.KeyValue {
	return perDCAttrs(ReplicasRequiredKey, perDC)
}

// ReplicasAcked encodes the per-DC replica acknowledgements a request got.
//
// OpenTelemetry attributes cannot hold maps, so a per-DC count is written
// twice: once as a single string attribute, datacenters sorted,
// ("meridian.replicas.acked" = "eu-west=1,us-east=2"), which reads well in
// a trace view and compares exactly with the consistency attribute; and once
// per datacenter as an int attribute ("meridian.replicas.acked.us-east" = 2),
// which trace stores can filter and aggregate numerically. The result is
// sorted by key so span attributes are deterministic.
//
// These are span attributes only: per-DC keys are unbounded in number and
// must never become metric labels.
func ReplicasAcked(perDC map[string]int) []attribute.KeyValue {
	return perDCAttrs(ReplicasAckedKey, perDC)
}

func perDCAttrs(key attribute.Key, perDC map[string]int) []attribute.KeyValue {
	dcs := sortedKeys(perDC)
	kvs := make([]attribute.KeyValue, 0, len(dcs)+1)
	kvs = append(kvs, key.String(formatPerDC(dcs, perDC)))
	for _, dc := range dcs {
		kvs = append(kvs, attribute.Key(string(key)+"."+dc).Int(perDC[dc]))
	}
	return kvs
}

// FormatPerDC renders a per-DC count map canonically: "dc=n" pairs sorted
// by datacenter, joined by commas ("eu-west=1,us-east=2"); an empty map is "".
func FormatPerDC(perDC map[string]int) string {
	return formatPerDC(sortedKeys(perDC), perDC)
}

func formatPerDC(dcs []string, perDC map[string]int) string {
	var b strings.Builder
	for i, dc := range dcs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(dc)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(perDC[dc]))
	}
	return b.String()
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SpanName returns a database span name as the conventions ask,
// "{db.operation.name} {target}" (target = the keyspace), or the operation
// alone when there is no keyspace.
func SpanName(op, keyspace string) string {
	if keyspace == "" {
		return op
	}
	return op + " " + keyspace
}

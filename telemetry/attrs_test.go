package telemetry

import (
	"testing"

	"go.opentelemetry.io/otel/attribute"
)

func TestPerDCEncoding(t *testing.T) {
	got := ReplicasAcked(map[string]int{"us-east": 2, "eu-west": 1, "ap-south": 0})
	want := []attribute.KeyValue{
		attribute.String("meridian.replicas.acked", "ap-south=0,eu-west=1,us-east=2"),
		attribute.Int("meridian.replicas.acked.ap-south", 0),
		attribute.Int("meridian.replicas.acked.eu-west", 1),
		attribute.Int("meridian.replicas.acked.us-east", 2),
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("attr %d = %v, want %v", i, got[i], want[i])
		}
	}
	if r := ReplicasRequired(nil); len(r) != 1 || r[0] != attribute.String("meridian.replicas.required", "") {
		t.Errorf("ReplicasRequired(nil) = %v", r)
	}
	if s := FormatPerDC(map[string]int{"b": 1, "a": 3}); s != "a=3,b=1" {
		t.Errorf("FormatPerDC = %q", s)
	}
}

func TestSemanticKeys(t *testing.T) {
	for got, want := range map[attribute.Key]string{
		DBSystemNameKey: "db.system.name", DBOperationNameKey: "db.operation.name",
		DBNamespaceKey: "db.namespace", ServerAddressKey: "server.address", ServerPortKey: "server.port",
		ErrorTypeKey: "error.type",
	} {
		if string(got) != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
	if DBSystem.Value.AsString() != "meridian" {
		t.Errorf("db.system.name = %q", DBSystem.Value.AsString())
	}
	if SpanName("get", "users") != "get users" || SpanName("ping", "") != "ping" {
		t.Error("SpanName does not follow {db.operation.name} {target}")
	}
	if a := ServerAddress("10.0.0.1", 7400); len(a) != 2 || a[1].Value.AsInt64() != 7400 {
		t.Errorf("ServerAddress = %v", a)
	}
}

package node

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	c := Config{
		ID: "east-1", DC: "east", Listen: "127.0.0.1:7000", Gossip: "127.0.0.1:7100", DataDir: "/tmp/x",
		GossipKeys: []string{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
		Keyspaces:  map[string]Keyspace{"default": {Replication: map[string]int{"east": 3}}},
	}
	c.TLS.CA, c.TLS.Cert, c.TLS.Key = "ca.pem", "n.pem", "n-key.pem"
	c.EnsureDefaults()
	return c
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	if err := func() error { c := validConfig(); return c.Validate() }(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	c := validConfig()
	c.ID = ""
	c.Listen = "nowhere"
	c.GossipKeys = []string{"short"}
	c.Keyspaces["default"] = Keyspace{Replication: map[string]int{"east": 3}, WriteConsistency: "MOST", ReadConsistency: "LOCAL_QUORUM", WarnSiblings: 5, MaxSiblings: 2}
	c.Repair.Windows = []RepairWindow{{Pair: []string{"east", "west"}, Cron: "0 2 * *", Duration: time.Hour}}
	c.Repair.Background = BackgroundRepair{Period: time.Second, BytesPerSecond: -1}
	err := c.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"id is required", "listen", "gossip_keys[0]", `unknown level "MOST"`, "max_siblings 2 is below warn_siblings 5", "bad cron expression", "repair.background.period", "repair.background.bytes_per_second"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestConfigValidatesMaxObjectBytes(t *testing.T) {
	c := validConfig()
	if c.Limits.MaxObjectBytes != DefaultMaxObjectBytes {
		t.Fatalf("default max_object_bytes %d, want %d", c.Limits.MaxObjectBytes, DefaultMaxObjectBytes)
	}
	c.Limits.MaxObjectBytes = c.Limits.MaxValueBytes - 1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "max_object_bytes") {
		t.Fatalf("max_object_bytes below max_value_bytes: %v", err)
	}
	c.Limits.MaxObjectBytes = 128 << 20 // × (3 replicas + 1) past the message limit
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "message limit") {
		t.Fatalf("max_object_bytes past the message limit: %v", err)
	}
}

// The default max_object_bytes shrinks for keyspaces with many replicas,
// so a default configuration is always valid.
func TestDefaultMaxObjectBytesFitsManyReplicas(t *testing.T) {
	c := validConfig()
	c.Keyspaces = map[string]Keyspace{"default": {Replication: map[string]int{"east": 6, "b": 6, "c": 6}}}
	c.Limits.MaxObjectBytes = 0
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("default configuration with 18 replicas: %v", err)
	}
	if c.Limits.MaxObjectBytes >= DefaultMaxObjectBytes || c.Limits.MaxObjectBytes < c.Limits.MaxValueBytes {
		t.Fatalf("max_object_bytes %d for 18 replicas", c.Limits.MaxObjectBytes)
	}
}

// TestConfigValidatesHTTP: the gateway is off without http, and on with
// a host:port; anything else is refused with the field named.
func TestConfigValidatesHTTP(t *testing.T) {
	for _, ok := range []string{"", "127.0.0.1:0", "0.0.0.0:8443", "[::1]:8443", ":8443"} {
		c := validConfig()
		c.HTTP = ok
		if err := c.Validate(); err != nil {
			t.Errorf("http %q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"8443", "localhost", "127.0.0.1:https", "127.0.0.1:70000", "https://127.0.0.1:8443"} {
		c := validConfig()
		c.HTTP = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "http "+strconv.Quote(bad)) {
			t.Errorf("http %q: %v", bad, err)
		}
	}
}

package node

import (
	"math"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The connection and rate limits are read from limits: and checked.
func TestConfigConnectionAndRateLimits(t *testing.T) {
	var c Config
	if err := yaml.Unmarshal([]byte(`
limits:
  max_conns_per_client: 8
  max_conns_per_node: 32
  max_request_bytes_per_client: 16777216
  client_requests_per_second: 250.5
  client_request_burst: 500
  unvalidated_handshakes_per_second: -1
`), &c); err != nil {
		t.Fatal(err)
	}
	want := Limits{MaxConnsPerClient: 8, MaxConnsPerNode: 32, MaxRequestBytesPerClient: 16 << 20, ClientRequestsPerSecond: 250.5, ClientRequestBurst: 500, UnvalidatedHandshakesPerSecond: -1}
	if c.Limits != want {
		t.Fatalf("limits %+v, want %+v", c.Limits, want)
	}
	bad := validConfig()
	bad.Limits.MaxConnsPerClient, bad.Limits.MaxConnsPerNode, bad.Limits.ClientRequestBurst, bad.Limits.MaxRequestBytesPerClient = -1, -1, -1, -1
	bad.Limits.ClientRequestsPerSecond = math.NaN()
	err := bad.Validate()
	for _, f := range []string{"limits.max_conns_per_client", "limits.max_conns_per_node", "limits.max_request_bytes_per_client", "limits.client_request_burst", "limits.client_requests_per_second"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("error does not name %s: %v", f, err)
		}
	}
}

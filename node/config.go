package node

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/consistency"
	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/repair"
	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/wan"
)

// Config is one node's configuration, read from YAML. The zero value of a
// field means its documented default.
type Config struct {
	// ID names the node uniquely in the cluster; its certificate's common
	// name must equal it.
	ID string `yaml:"id"`
	// DC is the node's datacenter (region).
	DC string `yaml:"dc"`
	// Rack is the node's rack or availability zone inside DC; replicas of a
	// key spread over racks where possible. Default "rack1".
	Rack string `yaml:"rack"`
	// Listen is the UDP host:port of the QUIC endpoint, for nodes and
	// clients alike.
	Listen string `yaml:"listen"`
	// Advertise is the QUIC address other nodes dial, if not Listen's
	// (e.g. behind NAT or when Listen binds 0.0.0.0).
	Advertise string `yaml:"advertise,omitempty"`
	// Admin is the host:port of the admin HTTP endpoint; empty disables it.
	Admin string `yaml:"admin,omitempty"`
	// HTTP is the host:port of the HTTP gateway (HTTPS with client
	// certificates, see docs/protocol.md); empty, the default, disables
	// it. It serves the same requests as the QUIC client protocol, with
	// the same credentials, grants and limits.
	HTTP string `yaml:"http,omitempty"`
	// Profiling serves Go's profiles (net/http/pprof) under /debug/pprof/
	// on the admin endpoint. Off by default: a profile shows the node's
	// internals to whoever reaches the admin address, and costs CPU while
	// it is taken.
	Profiling bool `yaml:"profiling,omitempty"`
	// Gossip is the host:port (TCP and UDP) of serf membership gossip.
	Gossip string `yaml:"gossip"`
	// Seeds are gossip addresses of nodes to join through; any one alive
	// is enough. This node's own address may be listed.
	Seeds []string `yaml:"seeds"`
	// GossipKeys are base64 AES keys (16, 24 or 32 bytes) encrypting
	// gossip; the first encrypts, all decrypt (for rotation). Empty means
	// unencrypted gossip — refused unless InsecureGossip is set.
	GossipKeys []string `yaml:"gossip_keys,omitempty"`
	// InsecureGossip allows unencrypted gossip.
	InsecureGossip bool `yaml:"insecure_gossip,omitempty"`
	// GossipProfile tunes failure detection: "wan" (default: memberlist's
	// WAN settings, for clusters spanning regions), "lan" or "local".
	GossipProfile string `yaml:"gossip_profile,omitempty"`
	// ReconnectTimeout is how long a failed member stays in the ring
	// before gossip forgets it; default 72h (serf's default is 24h).
	ReconnectTimeout time.Duration `yaml:"reconnect_timeout,omitempty"`
	// Hints configures hinted handoff.
	Hints HintsConfig `yaml:"hints,omitempty"`
	// Repair configures scheduled anti-entropy repair.
	Repair RepairConfig `yaml:"repair,omitempty"`
	// DataDir holds the node's Pebble store.
	DataDir string `yaml:"data_dir"`
	// RowCacheBytes is the budget of the store's row cache, the plaintext
	// of recently read and written objects; 0 means 32 MiB
	// (store.DefaultRowCacheSize), a negative value turns it off.
	RowCacheBytes int64 `yaml:"row_cache_bytes,omitempty"`
	// TLS names the cluster CA and this node's certificate and key.
	TLS wan.TLSFiles `yaml:"tls"`
	// VNodes is the number of ring tokens per node; default
	// placement.DefaultVNodes. Every node must use the same value.
	VNodes int `yaml:"vnodes,omitempty"`
	// Keyspaces maps a keyspace name to its settings.
	Keyspaces map[string]Keyspace `yaml:"keyspaces"`
	// Limits bound what a request may carry and how long it may take.
	Limits Limits `yaml:"limits,omitempty"`
	// WANEmulation, if set, delays this node's packets to other
	// datacenters (for local clusters of separate processes).
	WANEmulation *WANEmulation `yaml:"wan_emulation,omitempty"`
	// Auth configures authorization (auth.go).
	Auth AuthConfig `yaml:"auth,omitempty"`
	// Audit configures the audit log (audit.go).
	Audit AuditConfig `yaml:"audit,omitempty"`
	// Encryption turns on encryption at rest (encryption.go); absent
	// means none.
	Encryption EncryptionConfig `yaml:"encryption,omitempty"`
}

// RepairConfig schedules anti-entropy repair per datacenter pair.
type RepairConfig struct {
	// Windows say when repair may run between two datacenters (or inside
	// one, with both names the same), for how long, and at how many bytes
	// per second per destination region. No windows: repair runs only when
	// an operator asks (meridian repair --now).
	Windows []RepairWindow `yaml:"windows,omitempty"`
	// TombstoneGrace is the least time a tombstone is kept; it is
	// collected only once, after it arrived, this node has completed a
	// repair session with every other replica of its key (in every
	// datacenter). A node down longer than this serves no reads of a range
	// until it has repaired it. Default 3h; it must not be shorter than
	// hints.max_age while hints are on.
	TombstoneGrace time.Duration `yaml:"tombstone_grace,omitempty"`
	// Background is the low-rate repair that runs while no window is
	// configured, so that divergence no hint covers is bounded in time.
	Background BackgroundRepair `yaml:"background,omitempty"`
}

// BackgroundRepair is the default schedule: with no windows configured,
// every pair of datacenters holding a keyspace (each datacenter with
// itself included) gets a full repair pass once per Period, its segments
// spread evenly over the first half of it, at most BytesPerSecond to
// each destination region. Configuring any window replaces it.
type BackgroundRepair struct {
	// Disabled turns it off: with no windows, repair then runs only when
	// an operator asks (meridian repair --now).
	Disabled bool `yaml:"disabled,omitempty"`
	// Period bounds how long a range stays unrepaired; default 24h.
	Period time.Duration `yaml:"period,omitempty"`
	// BytesPerSecond is the budget per destination region; default 2 MiB/s.
	BytesPerSecond int64 `yaml:"bytes_per_second,omitempty"`
}

// Defaults of BackgroundRepair.
const (
	DefaultBackgroundPeriod         = 24 * time.Hour
	DefaultBackgroundBytesPerSecond = 2 << 20
)

// RepairWindow is one scheduled window (see repair.Window).
type RepairWindow struct {
	// Pair names two datacenters, e.g. [east, west]; [east, east] is the
	// continuous pass inside east.
	Pair []string `yaml:"pair"`
	// Cron is a five-field UTC cron expression (e.g. "0 2 * * *"), or
	// empty for always open.
	Cron string `yaml:"cron,omitempty"`
	// Duration is how long the window stays open after each firing.
	Duration time.Duration `yaml:"duration,omitempty"`
	// BytesPerSecond is the WAN budget per destination region; default
	// 24 MiB/s.
	BytesPerSecond int64 `yaml:"bytes_per_second,omitempty"`
}

// windows returns the configured windows in repair's form.
func (c *RepairConfig) windows() []repair.Window {
	var out []repair.Window
	for _, w := range c.Windows {
		var pair [2]string
		copy(pair[:], w.Pair)
		out = append(out, repair.Window{Pair: pair, Cron: w.Cron, Duration: w.Duration, BytesPerSecond: w.BytesPerSecond})
	}
	return out
}

// HintsConfig bounds hinted handoff (Dynamo §4.6).
type HintsConfig struct {
	// Disabled turns hinted handoff off: writes to unreachable replicas
	// just fail (repair must cover them).
	Disabled bool `yaml:"disabled,omitempty"`
	// MaxAge drops a hint not delivered within it; default 3h, Cassandra's
	// max_hint_window. A dropped hint is counted and left to repair.
	MaxAge time.Duration `yaml:"max_age,omitempty"`
	// MaxBytesPerTarget bounds the hints kept for one target; default
	// 256 MiB. Past it new hints are dropped (and counted). A write-ahead
	// hint counts its small record, not the object it names.
	MaxBytesPerTarget int64 `yaml:"max_bytes_per_target,omitempty"`
}

// Keyspace configures one keyspace.
type Keyspace struct {
	// Replication maps a datacenter to its number of replicas; absent or 0
	// keeps no copy there.
	Replication map[string]int `yaml:"replication"`
	// WriteConsistency and ReadConsistency are the defaults for requests
	// that name none; default LOCAL_QUORUM.
	WriteConsistency string `yaml:"write_consistency,omitempty"`
	ReadConsistency  string `yaml:"read_consistency,omitempty"`
	// WarnSiblings is the sibling count past which a write succeeds with a
	// warning; default 25. MaxSiblings is the count past which a write that
	// would add a sibling is refused until a client resolves the key;
	// default 100. (Riak's warn_siblings / max_siblings.)
	WarnSiblings int `yaml:"warn_siblings,omitempty"`
	MaxSiblings  int `yaml:"max_siblings,omitempty"`
	// HintedWritesCount makes a write that only reached a replica's
	// stand-in (a hint) count towards W, as in Dynamo. Default false, as in
	// Cassandra: W then always means W real replicas, so R+W>N still gives
	// read-your-writes on the preference list; the hint is kept either way.
	HintedWritesCount bool `yaml:"hinted_writes_count,omitempty"`
}

// Limits bound requests.
type Limits struct {
	// MaxValueBytes is the largest value accepted; default 1 MiB.
	MaxValueBytes int `yaml:"max_value_bytes,omitempty"`
	// MaxObjectBytes bounds a key's object: the bytes of all its siblings'
	// values. A write that would grow a key's object past it (as its
	// coordinator knows the object) is refused; default 16 MiB, lowered
	// for keyspaces of more than 14 replicas so that merged objects stay
	// within the message limit (see docs/architecture.md, Limits).
	MaxObjectBytes int `yaml:"max_object_bytes,omitempty"`
	// RequestTimeout bounds a request that carries no deadline; default 5s.
	RequestTimeout time.Duration `yaml:"request_timeout,omitempty"`
	// MaxConnsPerClient bounds the QUIC connections one client principal
	// (certificate name) holds to this node; default 64. A connection past
	// it is closed with an error naming the limit.
	MaxConnsPerClient int `yaml:"max_conns_per_client,omitempty"`
	// MaxRequestBytesPerClient bounds the bytes of the requests being
	// read from one client principal, over all its connections; default
	// 64 MiB, never less than one frame (4 MiB). A request past it is
	// refused "overloaded", not served.
	MaxRequestBytesPerClient int64 `yaml:"max_request_bytes_per_client,omitempty"`
	// MaxConnsPerNode is the same bound for each peer node; default 256.
	MaxConnsPerNode int `yaml:"max_conns_per_node,omitempty"`
	// ClientRequestsPerSecond and ClientRequestBurst bound the requests
	// one client principal makes of this node, over all its connections
	// (a token bucket); a request past them is refused "overloaded", not
	// served. Defaults 10000 per second and twice the rate; a negative
	// rate turns the limit off. Node-to-node traffic is never limited.
	ClientRequestsPerSecond float64 `yaml:"client_requests_per_second,omitempty"`
	ClientRequestBurst      int     `yaml:"client_request_burst,omitempty"`
	// UnvalidatedHandshakesPerSecond is how many new connections a second
	// are accepted before each must first prove its source address (a
	// QUIC Retry, one more round trip); default 100, negative: always.
	UnvalidatedHandshakesPerSecond float64 `yaml:"unvalidated_handshakes_per_second,omitempty"`
}

// WANEmulation delays packets between datacenters in-process.
type WANEmulation struct {
	Latency time.Duration `yaml:"latency"`
	Jitter  time.Duration `yaml:"jitter,omitempty"`
	Loss    float64       `yaml:"loss,omitempty"`
	// Peers maps peers' QUIC addresses to their datacenter, so packets to
	// them can be delayed by destination.
	Peers map[string]string `yaml:"peers"`
}

// Defaults.
const (
	DefaultRack           = "rack1"
	DefaultWarnSiblings   = 25
	DefaultMaxSiblings    = 100
	DefaultRequestTimeout = 5 * time.Second
	DefaultConsistency    = consistency.LocalQuorum
	// DefaultReconnectTimeout keeps a failed node in the ring for three
	// days, longer than a long weekend's outage.
	DefaultReconnectTimeout = 72 * time.Hour
)

// LoadConfig reads, defaults and validates a YAML node configuration.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node: reading config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("node: config %s: %w", path, err)
	}
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("node: config %s: %w", path, err)
	}
	return &c, nil
}

// EnsureDefaults fills zero fields with their defaults.
func (c *Config) EnsureDefaults() {
	if c.Rack == "" {
		c.Rack = DefaultRack
	}
	if c.Hints.MaxAge == 0 {
		c.Hints.MaxAge = store.DefaultHintMaxAge
	}
	if c.Hints.MaxBytesPerTarget == 0 {
		c.Hints.MaxBytesPerTarget = store.DefaultHintMaxBytes
	}
	if c.Repair.TombstoneGrace == 0 {
		c.Repair.TombstoneGrace = max(DefaultTombstoneGrace, c.Hints.MaxAge)
	}
	if c.Repair.Background.Period == 0 {
		c.Repair.Background.Period = DefaultBackgroundPeriod
	}
	if c.Repair.Background.BytesPerSecond == 0 {
		c.Repair.Background.BytesPerSecond = DefaultBackgroundBytesPerSecond
	}
	if c.ReconnectTimeout == 0 {
		c.ReconnectTimeout = DefaultReconnectTimeout
	}
	if c.VNodes == 0 {
		c.VNodes = placement.DefaultVNodes
	}
	if c.Limits.MaxValueBytes == 0 {
		c.Limits.MaxValueBytes = api.DefaultMaxValueLen
	}
	if c.Limits.MaxObjectBytes == 0 {
		// 16 MiB, or less where many replicas would make the merged
		// objects of a key exceed the message limit (see messageLimit).
		c.Limits.MaxObjectBytes = min(DefaultMaxObjectBytes, (wan.DefaultMaxMessage-(1<<20))/(c.maxReplicas()+1))
	}
	if c.Limits.RequestTimeout == 0 {
		c.Limits.RequestTimeout = DefaultRequestTimeout
	}
	for name, ks := range c.Keyspaces {
		if ks.WriteConsistency == "" {
			ks.WriteConsistency = string(DefaultConsistency)
		}
		if ks.ReadConsistency == "" {
			ks.ReadConsistency = string(DefaultConsistency)
		}
		if ks.WarnSiblings == 0 {
			ks.WarnSiblings = DefaultWarnSiblings
		}
		if ks.MaxSiblings == 0 {
			ks.MaxSiblings = DefaultMaxSiblings
		}
		c.Keyspaces[name] = ks
	}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.ID == "" {
		bad("id is required")
	}
	if c.DC == "" {
		bad("dc is required")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen %q is not host:port: %v", c.Listen, err)
	}
	if c.HTTP != "" {
		if _, port, err := net.SplitHostPort(c.HTTP); err != nil {
			bad("http %q is not host:port (the HTTP gateway's address; leave it out to turn the gateway off): %v", c.HTTP, err)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad("http %q: port %q is not a number from 0 to 65535", c.HTTP, port)
		}
	}
	if c.DataDir == "" {
		bad("data_dir is required")
	}
	if c.TLS.CA == "" || c.TLS.Cert == "" || c.TLS.Key == "" {
		bad("tls.ca, tls.cert and tls.key are all required (meridian cert create-ca / create-node write a set; so does meridian dev --config-only)")
	}
	for i, s := range c.TLS.Revoked {
		if _, err := wan.ParseSerial(s); err != nil {
			bad("tls.revoked[%d]: %v", i, err)
		}
	}
	if _, _, err := net.SplitHostPort(c.Gossip); err != nil {
		bad("gossip %q is not host:port: %v", c.Gossip, err)
	}
	for i, seed := range c.Seeds {
		if _, _, err := net.SplitHostPort(seed); err != nil {
			bad("seeds[%d] %q is not host:port", i, seed)
		}
	}
	if len(c.GossipKeys) == 0 && !c.InsecureGossip {
		bad("gossip_keys is required (base64 of 32 random bytes; meridian dev --config-only writes one), or set insecure_gossip: true")
	}
	for i, k := range c.GossipKeys {
		b, err := base64.StdEncoding.DecodeString(k)
		if err != nil || (len(b) != 16 && len(b) != 24 && len(b) != 32) {
			bad("gossip_keys[%d] must be base64 of 16, 24 or 32 bytes", i)
		}
	}
	switch c.GossipProfile {
	case "", "wan", "lan", "local":
	default:
		bad("gossip_profile %q must be wan, lan or local", c.GossipProfile)
	}
	for i, w := range c.Repair.Windows {
		if len(w.Pair) != 2 {
			bad("repair.windows[%d]: pair must name two datacenters", i)
		}
	}
	if err := repair.ValidateWindows(c.Repair.windows()); err != nil {
		bad("%v", err)
	}
	if c.Hints.MaxAge < 0 || c.Hints.MaxBytesPerTarget < 0 {
		bad("hints.max_age and hints.max_bytes_per_target must not be negative")
	}
	if c.Repair.Background.Period < 0 || (c.Repair.Background.Period > 0 && c.Repair.Background.Period < time.Minute) {
		bad("repair.background.period %v must be at least 1m (default 24h)", c.Repair.Background.Period)
	}
	if c.Repair.Background.BytesPerSecond < 0 {
		bad("repair.background.bytes_per_second must not be negative (0 means the default, %d)", DefaultBackgroundBytesPerSecond)
	}
	if c.Repair.TombstoneGrace < 0 {
		bad("repair.tombstone_grace must not be negative")
	}
	if !c.Hints.Disabled && c.Repair.TombstoneGrace > 0 && c.Repair.TombstoneGrace < c.Hints.MaxAge {
		bad("repair.tombstone_grace %v is shorter than hints.max_age %v: a hint older than a delete could bring the deleted value back after its tombstone is collected", c.Repair.TombstoneGrace, c.Hints.MaxAge)
	}
	if len(c.Keyspaces) == 0 {
		bad("at least one keyspace is required")
	}
	names := make([]string, 0, len(c.Keyspaces))
	for name := range c.Keyspaces {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ks := c.Keyspaces[name]
		total := 0
		for dc, n := range ks.Replication {
			if n < 0 {
				bad("keyspace %q: replication %s=%d is negative", name, dc, n)
			}
			total += n
		}
		if total == 0 {
			bad("keyspace %q: replication keeps no copy anywhere", name)
		}
		for _, s := range []string{ks.WriteConsistency, ks.ReadConsistency} {
			spec, err := consistency.Parse(s)
			if err == nil {
				_, err = spec.Resolve(ks.Replication, c.DC)
			}
			if err != nil {
				bad("keyspace %q: %v", name, err)
			}
		}
		if ks.MaxSiblings < ks.WarnSiblings {
			bad("keyspace %q: max_siblings %d is below warn_siblings %d", name, ks.MaxSiblings, ks.WarnSiblings)
		}
	}
	if c.Limits.MaxValueBytes < 0 || c.Limits.MaxValueBytes > wan.DefaultMaxFrame-api.MaxKeyLen-4096 {
		bad("limits.max_value_bytes %d must be between 1 and %d", c.Limits.MaxValueBytes, wan.DefaultMaxFrame-api.MaxKeyLen-4096)
	}
	if c.Limits.MaxConnsPerClient < 0 {
		bad("limits.max_conns_per_client %d must not be negative (0 means the default, 64)", c.Limits.MaxConnsPerClient)
	}
	if c.Limits.MaxRequestBytesPerClient < 0 {
		bad("limits.max_request_bytes_per_client %d must not be negative (0 means the default, 64 MiB)", c.Limits.MaxRequestBytesPerClient)
	}
	if c.Limits.MaxConnsPerNode < 0 {
		bad("limits.max_conns_per_node %d must not be negative (0 means the default, 256)", c.Limits.MaxConnsPerNode)
	}
	if math.IsNaN(c.Limits.ClientRequestsPerSecond) || math.IsNaN(c.Limits.UnvalidatedHandshakesPerSecond) {
		bad("limits.client_requests_per_second and limits.unvalidated_handshakes_per_second must be numbers (negative turns the limit off)")
	}
	if c.Limits.ClientRequestBurst < 0 {
		bad("limits.client_request_burst %d must not be negative (0 means twice limits.client_requests_per_second)", c.Limits.ClientRequestBurst)
	}
	if c.Limits.MaxObjectBytes < c.Limits.MaxValueBytes {
		bad("limits.max_object_bytes %d is below limits.max_value_bytes %d: one value would not fit in an object", c.Limits.MaxObjectBytes, c.Limits.MaxValueBytes)
	} else if m := c.messageLimit(); m > wan.DefaultMaxMessage {
		bad("limits.max_object_bytes %d is too large for the keyspaces' replica counts: merged objects and replies of up to %d bytes would exceed the %d-byte message limit; lower it", c.Limits.MaxObjectBytes, m, wan.DefaultMaxMessage)
	}
	if w := c.WANEmulation; w != nil && (w.Latency < 0 || w.Jitter < 0 || w.Loss < 0 || w.Loss > 1) {
		bad("wan_emulation: latency and jitter must be >= 0 and loss within [0,1]")
	}
	errs = append(errs, c.Auth.validate()...)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

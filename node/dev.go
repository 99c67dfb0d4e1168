package node

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/meridian-kv/meridian/wan"
)

// DevOptions describe a local multi-region cluster on one machine.
type DevOptions struct {
	// Dir holds certificates, configurations and data.
	Dir string
	// Regions are the datacenters; default east, west, central.
	Regions []string
	// NodesPerRegion; default 3.
	NodesPerRegion int
	// Replicas per region of the "default" keyspace; default
	// min(3, NodesPerRegion).
	Replicas int
	// BasePort is the first UDP port; nodes take consecutive ports. 0 picks
	// free ports.
	BasePort int
	// Host is the address nodes bind; default 127.0.0.1.
	Host string
	// WANLatency is the one-way delay written into each node's
	// wan_emulation (used when nodes run as separate processes).
	WANLatency time.Duration
	// Now is the clock for certificate validity; nil means time.Now.
	Now func() time.Time
	// NoEncryption leaves encryption at rest off. By default every node
	// seals its values under the key of Dir/certs/encryption-keys.yaml
	// (DevKeyFile), made once per directory.
	NoEncryption bool
}

// DevCluster is what WriteDevCluster produced.
type DevCluster struct {
	Nodes       []Config
	NodeFiles   []string // Dir/nodes/<id>.yaml, in Nodes order
	ClientTLS   wan.TLSFiles
	FirstRegion string
}

// DevPrincipal names the client certificate a dev cluster issues; every
// node of the cluster lists it in auth.superusers.
const DevPrincipal = "admin"

// devCertValidity is how long dev certificates last.
const devCertValidity = 365 * 24 * time.Hour

// WriteDevCluster creates (or reuses) a cluster CA in opts.Dir, issues a
// certificate per node and one client certificate (principal DevPrincipal,
// a superuser of every node), and writes one YAML
// configuration per node to Dir/nodes/<region>-<i>.yaml.
func WriteDevCluster(opts DevOptions) (*DevCluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("node: dev cluster needs a directory")
	}
	if len(opts.Regions) == 0 {
		opts.Regions = []string{"east", "west", "central"}
	}
	if opts.NodesPerRegion == 0 {
		opts.NodesPerRegion = 3
	}
	if opts.NodesPerRegion < 0 {
		return nil, errors.New("node: nodes per region must be positive")
	}
	if opts.Replicas == 0 {
		opts.Replicas = min(3, opts.NodesPerRegion)
	}
	if opts.Replicas > opts.NodesPerRegion {
		return nil, fmt.Errorf("node: %d replicas per region need at least that many nodes per region, not %d", opts.Replicas, opts.NodesPerRegion)
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	seen := map[string]bool{}
	for _, r := range opts.Regions {
		if r == "" || seen[r] {
			return nil, fmt.Errorf("node: region names must be distinct and non-empty: %v", opts.Regions)
		}
		seen[r] = true
	}
	for _, sub := range []string{"certs", "nodes", "data"} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	ca, err := loadOrCreateCA(opts.Dir, now())
	if err != nil {
		return nil, err
	}
	caFile := abs(filepath.Join(opts.Dir, "certs", "ca.pem"))

	gossipKey, err := loadOrCreateGossipKey(opts.Dir)
	if err != nil {
		return nil, err
	}
	var encryption EncryptionConfig
	if !opts.NoEncryption {
		if encryption.KeyFile, err = loadOrCreateKeyFile(opts.Dir); err != nil {
			return nil, err
		}
	}
	type devMember struct{ id, dc, rack, addr, gossip, admin string }
	var members []devMember
	total := len(opts.Regions) * opts.NodesPerRegion
	port := opts.BasePort
	var held []io.Closer // free ports stay bound until all are chosen
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for _, region := range opts.Regions {
		for i := 1; i <= opts.NodesPerRegion; i++ {
			m := devMember{id: fmt.Sprintf("%s-%d", region, i), dc: region, rack: fmt.Sprintf("rack%d", i)}
			if opts.BasePort == 0 {
				if m.addr, held, err = freeUDPAddr(opts.Host, held); err != nil {
					return nil, err
				}
				if m.gossip, held, err = freeGossipAddr(opts.Host, held); err != nil {
					return nil, err
				}
				if m.admin, held, err = freeGossipAddr(opts.Host, held); err != nil {
					return nil, err
				}
			} else {
				m.addr = net.JoinHostPort(opts.Host, strconv.Itoa(port))
				m.gossip = net.JoinHostPort(opts.Host, strconv.Itoa(port+total))
				m.admin = net.JoinHostPort(opts.Host, strconv.Itoa(port+2*total))
				port++
			}
			members = append(members, m)
		}
	}
	// One seed per region: any of them alive lets a node join.
	var seeds []string
	peers := map[string]string{}
	for i, m := range members {
		if i%opts.NodesPerRegion == 0 {
			seeds = append(seeds, m.gossip)
		}
		peers[m.addr] = m.dc
	}
	rep := map[string]int{}
	for _, r := range opts.Regions {
		rep[r] = opts.Replicas
	}
	dc := &DevCluster{FirstRegion: opts.Regions[0]}
	for _, m := range members {
		tlsFiles, err := WriteNodeCert(ca, filepath.Join(opts.Dir, "certs"), m.id, m.dc, []string{opts.Host, "localhost"}, now(), devCertValidity, true)
		if err != nil {
			return nil, err
		}
		tlsFiles.CA = caFile
		cfg := Config{
			ID: m.id, DC: m.dc, Rack: m.rack, Listen: m.addr, Admin: m.admin,
			Gossip: m.gossip, Seeds: seeds, GossipKeys: []string{gossipKey},
			// Loopback: LAN failure detection. Clusters that really span
			// regions keep the default WAN profile.
			GossipProfile: "lan",
			DataDir:       abs(filepath.Join(opts.Dir, "data", m.id)),
			TLS:           tlsFiles,
			Auth:          AuthConfig{Superusers: []string{DevPrincipal}},
			Encryption:    encryption,
			Keyspaces: map[string]Keyspace{"default": {
				Replication:      rep,
				WriteConsistency: string(DefaultConsistency),
				ReadConsistency:  string(DefaultConsistency),
			}},
		}
		if opts.WANLatency > 0 {
			cfg.WANEmulation = &WANEmulation{Latency: opts.WANLatency, Peers: peers}
		}
		b, err := yaml.Marshal(&cfg)
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		file := filepath.Join(opts.Dir, "nodes", m.id+".yaml")
		header := fmt.Sprintf("# Meridian node %s (datacenter %s), written by meridian dev --config-only.\n# Run it with: meridian node --config %s\n", m.id, m.dc, file)
		if err := os.WriteFile(file, append([]byte(header), b...), 0o644); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		cfg.EnsureDefaults()
		dc.Nodes = append(dc.Nodes, cfg)
		dc.NodeFiles = append(dc.NodeFiles, file)
	}
	dc.ClientTLS, err = WriteClientCert(ca, filepath.Join(opts.Dir, "certs"), DevPrincipal, now(), devCertValidity, true)
	if err != nil {
		return nil, err
	}
	dc.ClientTLS.CA = caFile
	return dc, nil
}

// loadOrCreateCA reuses dir/certs' CA unless it expires within a day, as
// `meridian cert create-ca` would have written it.
func loadOrCreateCA(dir string, now time.Time) (*wan.CA, error) {
	certs := filepath.Join(dir, "certs")
	ca, err := LoadCA(certs, "")
	if err == nil && now.Before(ca.Cert.NotAfter.Add(-24*time.Hour)) {
		return ca, nil
	}
	if err != nil && !errors.Is(err, ErrNoCA) {
		return nil, err
	}
	return CreateCA(certs, "meridian dev CA", now, 10*devCertValidity, true)
}

// loadOrCreateGossipKey returns the cluster's gossip encryption key, made
// once per directory.
func loadOrCreateGossipKey(dir string) (string, error) {
	file := filepath.Join(dir, "certs", "gossip.key")
	if b, err := os.ReadFile(file); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("node: %w", err)
	}
	enc := base64.StdEncoding.EncodeToString(key)
	if err := os.WriteFile(file, []byte(enc+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("node: %w", err)
	}
	return enc, nil
}

// freeGossipAddr finds a port free for both TCP and UDP (memberlist binds
// both); the sockets are appended to held, to be closed by the caller once
// every port is chosen.
func freeGossipAddr(host string, held []io.Closer) (string, []io.Closer, error) {
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", held, fmt.Errorf("node: finding a free port: %w", err)
		}
		addr := l.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		if err == nil {
			return addr, append(held, l, pc), nil
		}
		l.Close()
	}
	return "", held, errors.New("node: no port free for both TCP and UDP")
}

// freeUDPAddr asks the kernel for a free UDP port on host; the socket is
// appended to held.
func freeUDPAddr(host string, held []io.Closer) (string, []io.Closer, error) {
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", held, fmt.Errorf("node: finding a free port: %w", err)
	}
	return pc.LocalAddr().String(), append(held, pc), nil
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

package devcluster

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

	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/wan"
)

// Options describe a local multi-region cluster on one machine.
type Options struct {
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
	// wan_emulation (used when nodes run as separate processes). A
	// cluster of one region gets none: there is no WAN to emulate, and a
	// wrapped socket loses QUIC's segmentation offload and batching.
	WANLatency time.Duration
	// Now is the clock for certificate validity; nil means time.Now.
	Now func() time.Time
	// HTTP has every node serve the HTTP gateway, on a TCP port of its
	// own (after the admin ports when BasePort is set).
	HTTP bool
	// NoEncryption leaves encryption at rest off. By default every node
	// seals its values under the key of Dir/certs/encryption-keys.yaml
	// (KeyFile), made once per directory.
	NoEncryption bool
}

// Cluster is what Write produced.
type Cluster struct {
	Nodes       []node.Config
	NodeFiles   []string // Dir/nodes/<id>.yaml, in Nodes order
	ClientTLS   wan.TLSFiles
	FirstRegion string
}

// Principal names the client certificate a dev cluster issues; every
// node of the cluster lists it in auth.superusers.
const Principal = "admin"

// certValidity is how long dev certificates last.
const certValidity = 365 * 24 * time.Hour

// KeyFile is where Write keeps the dev cluster's encryption key file,
// relative to its directory.
var KeyFile = filepath.Join("certs", "encryption-keys.yaml")

// Write creates (or reuses) a cluster CA in opts.Dir, issues a
// certificate per node and one client certificate (principal Principal, a
// superuser of every node), and writes one YAML configuration per node to
// Dir/nodes/<region>-<i>.yaml.
func Write(opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("devcluster: dev cluster needs a directory")
	}
	if len(opts.Regions) == 0 {
		opts.Regions = []string{"east", "west", "central"}
	}
	if opts.NodesPerRegion == 0 {
		opts.NodesPerRegion = 3
	}
	if opts.NodesPerRegion < 0 {
		return nil, errors.New("devcluster: nodes per region must be positive")
	}
	if opts.Replicas == 0 {
		opts.Replicas = min(3, opts.NodesPerRegion)
	}
	if opts.Replicas > opts.NodesPerRegion {
		return nil, fmt.Errorf("devcluster: %d replicas per region need at least that many nodes per region, not %d", opts.Replicas, opts.NodesPerRegion)
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
			return nil, fmt.Errorf("devcluster: region names must be distinct and non-empty: %v", opts.Regions)
		}
		seen[r] = true
	}
	for _, sub := range []string{"certs", "nodes", "data"} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("devcluster: %w", err)
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
	var encryption node.EncryptionConfig
	if !opts.NoEncryption {
		if encryption.KeyFile, err = loadOrCreateKeyFile(opts.Dir); err != nil {
			return nil, err
		}
	}
	type devMember struct{ id, dc, rack, addr, gossip, admin, http string }
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
				if opts.HTTP {
					if m.http, held, err = freeGossipAddr(opts.Host, held); err != nil {
						return nil, err
					}
				}
			} else {
				m.addr = net.JoinHostPort(opts.Host, strconv.Itoa(port))
				m.gossip = net.JoinHostPort(opts.Host, strconv.Itoa(port+total))
				m.admin = net.JoinHostPort(opts.Host, strconv.Itoa(port+2*total))
				if opts.HTTP {
					m.http = net.JoinHostPort(opts.Host, strconv.Itoa(port+3*total))
				}
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
	dc := &Cluster{FirstRegion: opts.Regions[0]}
	for _, m := range members {
		tlsFiles, err := node.WriteNodeCert(ca, filepath.Join(opts.Dir, "certs"), m.id, m.dc, []string{opts.Host, "localhost"}, now(), certValidity, true)
		if err != nil {
			return nil, err
		}
		tlsFiles.CA = caFile
		cfg := node.Config{
			ID: m.id, DC: m.dc, Rack: m.rack, Listen: m.addr, Admin: m.admin, HTTP: m.http,
			Gossip: m.gossip, Seeds: seeds, GossipKeys: []string{gossipKey},
			// Loopback: LAN failure detection. Clusters that really span
			// regions keep the default WAN profile.
			GossipProfile: "lan",
			DataDir:       abs(filepath.Join(opts.Dir, "data", m.id)),
			TLS:           tlsFiles,
			Auth:          node.AuthConfig{Superusers: []string{Principal}},
			Encryption:    encryption,
			Keyspaces: map[string]node.Keyspace{"default": {
				Replication:      rep,
				WriteConsistency: string(node.DefaultConsistency),
				ReadConsistency:  string(node.DefaultConsistency),
			}},
		}
		if opts.WANLatency > 0 && len(opts.Regions) > 1 {
			cfg.WANEmulation = &node.WANEmulation{Latency: opts.WANLatency, Peers: peers}
		}
		b, err := yaml.Marshal(&cfg)
		if err != nil {
			return nil, fmt.Errorf("devcluster: %w", err)
		}
		file := filepath.Join(opts.Dir, "nodes", m.id+".yaml")
		header := fmt.Sprintf("# Meridian node %s (datacenter %s), written by meridian dev --config-only.\n# Run it with: meridian node --config %s\n", m.id, m.dc, file)
		if err := os.WriteFile(file, append([]byte(header), b...), 0o644); err != nil {
			return nil, fmt.Errorf("devcluster: %w", err)
		}
		cfg.EnsureDefaults()
		dc.Nodes = append(dc.Nodes, cfg)
		dc.NodeFiles = append(dc.NodeFiles, file)
	}
	dc.ClientTLS, err = node.WriteClientCert(ca, filepath.Join(opts.Dir, "certs"), Principal, now(), certValidity, true)
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
	ca, err := node.LoadCA(certs, "")
	if err == nil && now.Before(ca.Cert.NotAfter.Add(-24*time.Hour)) {
		return ca, nil
	}
	if err != nil && !errors.Is(err, node.ErrNoCA) {
		return nil, err
	}
	return node.CreateCA(certs, "meridian dev CA", now, 10*certValidity, true)
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
		return "", fmt.Errorf("devcluster: %w", err)
	}
	enc := base64.StdEncoding.EncodeToString(key)
	if err := os.WriteFile(file, []byte(enc+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("devcluster: %w", err)
	}
	return enc, nil
}

// loadOrCreateKeyFile returns the absolute path of the dev cluster's key
// file, made (with one key) once per directory: a dev cluster restarted
// on its old data must find the keys that data is sealed under.
func loadOrCreateKeyFile(dir string) (string, error) {
	file := abs(filepath.Join(dir, KeyFile))
	if _, err := os.Stat(file); err == nil {
		return file, nil
	}
	if _, err := store.GenerateKey(file, "", true); err != nil {
		return "", fmt.Errorf("devcluster: %w", err)
	}
	return file, nil
}

// freeGossipAddr finds a port free for both TCP and UDP (memberlist binds
// both); the sockets are appended to held, to be closed by the caller once
// every port is chosen.
func freeGossipAddr(host string, held []io.Closer) (string, []io.Closer, error) {
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", held, fmt.Errorf("devcluster: finding a free port: %w", err)
		}
		addr := l.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		if err == nil {
			return addr, append(held, l, pc), nil
		}
		l.Close()
	}
	return "", held, errors.New("devcluster: no port free for both TCP and UDP")
}

// freeUDPAddr asks the kernel for a free UDP port on host; the socket is
// appended to held.
func freeUDPAddr(host string, held []io.Closer) (string, []io.Closer, error) {
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", held, fmt.Errorf("devcluster: finding a free port: %w", err)
	}
	return pc.LocalAddr().String(), append(held, pc), nil
}

// abs is p made absolute, or p itself if the working directory is unknown.
func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/wan"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Write node and client configurations (YAML) from flags",
		Long: `config writes the YAML configuration of one node (config node) or of a
client (config client), validated as meridian node and the client read them,
and makes the cluster's gossip key (config gossip-key). With meridian cert it
produces everything meridian dev --config-only writes, for real deployments:

  meridian cert create-ca --certs-dir certs
  meridian config gossip-key --out certs/gossip.key
  meridian cert create-node --certs-dir certs --id east-1 --dc east --host 10.0.1.5
  meridian config node --id east-1 --dc east --rack a \
      --listen 0.0.0.0:7000 --advertise 10.0.1.5:7000 --gossip 10.0.1.5:7946 \
      --admin 0.0.0.0:9090 --seed 10.0.1.5:7946 --seed 10.0.2.5:7946 \
      --data-dir /var/lib/meridian --certs-dir /etc/meridian/certs \
      --gossip-key-file certs/gossip.key \
      --keyspace default:east=3,west=3 --superuser admin --out east-1.yaml
  meridian cert create-client --certs-dir certs --name admin
  meridian config client --dc east --node east-1@east=10.0.1.5:7000 \
      --certs-dir certs --name admin --out client.yaml`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newConfigNodeCmd(), newConfigClientCmd(), newConfigGossipKeyCmd())
	return cmd
}

// nodeConfigFlags are the flags of config node.
type nodeConfigFlags struct {
	id, dc, rack                string
	listen, advertise, gossip   string
	admin, dataDir              string
	http                        string
	seeds                       []string
	certsDir, ca, cert, key     string
	gossipKeys                  []string
	gossipKeyFile               string
	gossipProfile               string
	keyspaces                   []string
	writeCons, readCons         string
	repairWindows               []string
	wanLatency, wanJitter       time.Duration
	wanPeers                    map[string]string
	out, header                 string
	overwrite                   bool
	superusers                  []string
	auditLog                    string
	encryptionKeyFile           string
	backgroundRepairDisabled    bool
	backgroundRepairPeriod      time.Duration
	backgroundRepairBytesPerSec int64
}

func newConfigNodeCmd() *cobra.Command {
	f := &nodeConfigFlags{}
	cmd := &cobra.Command{
		Use:   "node --id ID --dc DC --listen ADDR --gossip ADDR --data-dir DIR --keyspace NAME:DC=N,...",
		Short: "Write one node's configuration",
		Long: `node writes the YAML configuration of one node, validated as meridian node
--config reads it, to --out (default stdout).

--keyspace NAME:DC=N,DC=N (repeatable) keeps N replicas of keyspace NAME in
each datacenter DC. --certs-dir DIR names DIR/ca.pem, DIR/ID.pem and
DIR/ID-key.pem as written by meridian cert (paths as the node will see them;
--tls-ca, --tls-cert, --tls-key override one each). --repair-window
"A,B;CRON;DURATION[;BYTES_PER_SECOND]" (repeatable) opens repair between
datacenters A and B (A,A: inside A) at the five-field UTC CRON for DURATION.
--wan-latency with --wan-peer ADDR=DC (repeatable) delays this node's packets
to other datacenters' QUIC addresses in-process, for test clusters on one
machine or one Docker engine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config()
			if err != nil {
				return err
			}
			b, err := yaml.Marshal(cfg)
			if err != nil {
				return err
			}
			header := f.header
			if header == "" {
				header = fmt.Sprintf("Meridian node %s (datacenter %s), written by meridian config node.\nRun it with: meridian node --config FILE", cfg.ID, cfg.DC)
			}
			b = append(commentLines(header), b...)
			return writeChecked(cmd.OutOrStdout(), f.out, f.overwrite, b, func(path string) error {
				_, err := node.LoadConfig(path)
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.id, "id", "", "node id (its certificate's common name)")
	fl.StringVar(&f.dc, "dc", "", "the node's datacenter (region)")
	fl.StringVar(&f.rack, "rack", "", "rack or availability zone inside the datacenter (default rack1)")
	fl.StringVar(&f.listen, "listen", "", "UDP host:port of the QUIC endpoint (e.g. 0.0.0.0:7000)")
	fl.StringVar(&f.advertise, "advertise", "", "QUIC host:port other nodes dial, if not --listen's")
	fl.StringVar(&f.gossip, "gossip", "", "host:port (TCP and UDP) of gossip; an address others reach, it is also advertised")
	fl.StringVar(&f.admin, "admin", "", "host:port of the admin HTTP endpoint (/metrics, /healthz); empty disables it")
	fl.StringVar(&f.http, "http", "", "host:port (TCP) of the HTTP gateway, HTTPS with client certificates (docs/protocol.md); empty disables it")
	fl.StringArrayVar(&f.seeds, "seed", nil, "gossip address of a node to join through (repeatable)")
	fl.StringVar(&f.dataDir, "data-dir", "", "the node's data directory")
	fl.StringVar(&f.certsDir, "certs-dir", "", "certificates directory as the node sees it: DIR/ca.pem, DIR/ID.pem, DIR/ID-key.pem")
	fl.StringVar(&f.ca, "tls-ca", "", "cluster CA certificate (overrides --certs-dir)")
	fl.StringVar(&f.cert, "tls-cert", "", "node certificate (overrides --certs-dir)")
	fl.StringVar(&f.key, "tls-key", "", "node key (overrides --certs-dir)")
	fl.StringArrayVar(&f.gossipKeys, "gossip-key", nil, "base64 gossip encryption key (repeatable: the first encrypts)")
	fl.StringVar(&f.gossipKeyFile, "gossip-key-file", "", "file holding the base64 gossip key (meridian config gossip-key writes one)")
	fl.StringVar(&f.gossipProfile, "gossip-profile", "", "failure detection: wan (default), lan or local")
	fl.StringArrayVar(&f.keyspaces, "keyspace", nil, "NAME:DC=N,DC=N replicas per datacenter (repeatable)")
	fl.StringVar(&f.writeCons, "write-consistency", string(node.DefaultConsistency), "default write consistency of the keyspaces")
	fl.StringVar(&f.readCons, "read-consistency", string(node.DefaultConsistency), "default read consistency of the keyspaces")
	fl.StringArrayVar(&f.repairWindows, "repair-window", nil, `"A,B;CRON;DURATION[;BYTES_PER_SECOND]" repair window (repeatable)`)
	fl.BoolVar(&f.backgroundRepairDisabled, "no-background-repair", false, "with no repair windows, run repair only when an operator asks")
	fl.DurationVar(&f.backgroundRepairPeriod, "background-repair-period", 0, "background repair period (default 24h)")
	fl.Int64Var(&f.backgroundRepairBytesPerSec, "background-repair-bytes-per-second", 0, "background repair budget per destination region (default 2 MiB/s)")
	fl.DurationVar(&f.wanLatency, "wan-latency", 0, "emulated one-way latency to the --wan-peer nodes of other datacenters")
	fl.DurationVar(&f.wanJitter, "wan-jitter", 0, "emulated jitter (with --wan-latency)")
	fl.StringToStringVar(&f.wanPeers, "wan-peer", nil, "QUIC address=datacenter of a peer, for --wan-latency (repeatable, or comma-separated)")
	fl.StringArrayVar(&f.superusers, "superuser", nil, "principal (client certificate name) with admin on every keyspace, e.g. admin (repeatable; list the same on every node)")
	fl.StringVar(&f.auditLog, "audit-log", "", "audit log file (default audit.log in the data directory; - for stderr)")
	fl.StringVar(&f.encryptionKeyFile, "encryption-key-file", "", "encrypt values at rest with the keys of this file (meridian keys generate --file FILE makes one; default: no encryption)")
	fl.StringVar(&f.out, "out", "-", "file to write (- for stdout)")
	fl.BoolVar(&f.overwrite, "overwrite", false, "replace an existing --out file")
	fl.StringVar(&f.header, "comment", "", "comment written at the top of the file (default says what it is)")
	return cmd
}

// config builds the node configuration the flags describe.
func (f *nodeConfigFlags) config() (*node.Config, error) {
	var errs []error
	cfg := &node.Config{
		ID: f.id, DC: f.dc, Rack: f.rack, Listen: f.listen, Advertise: f.advertise,
		Admin: f.admin, HTTP: f.http, Gossip: f.gossip, Seeds: f.seeds, DataDir: f.dataDir,
		GossipProfile: f.gossipProfile,
		Keyspaces:     map[string]node.Keyspace{},
		Auth:          node.AuthConfig{Superusers: f.superusers},
		Audit:         node.AuditConfig{Path: f.auditLog},
		Encryption:    node.EncryptionConfig{KeyFile: f.encryptionKeyFile},
	}
	if f.encryptionKeyFile != "" {
		if _, err := store.LoadKeyFile(f.encryptionKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("--encryption-key-file: %w (meridian keys generate --file FILE makes one)", err))
		}
	}
	if f.certsDir != "" && f.id != "" {
		cfg.TLS = wan.TLSFiles{CA: filepath.Join(f.certsDir, node.CACertFile), Cert: node.CertFile(f.certsDir, f.id), Key: node.KeyFile(f.certsDir, f.id)}
	}
	if f.ca != "" {
		cfg.TLS.CA = f.ca
	}
	if f.cert != "" {
		cfg.TLS.Cert = f.cert
	}
	if f.key != "" {
		cfg.TLS.Key = f.key
	}
	cfg.GossipKeys = append(cfg.GossipKeys, f.gossipKeys...)
	if f.gossipKeyFile != "" {
		b, err := os.ReadFile(f.gossipKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--gossip-key-file: %w (meridian config gossip-key --out FILE makes one)", err))
		} else {
			cfg.GossipKeys = append(cfg.GossipKeys, strings.TrimSpace(string(b)))
		}
	}
	for _, spec := range f.keyspaces {
		name, rep, err := parseKeyspace(spec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := cfg.Keyspaces[name]; dup {
			errs = append(errs, fmt.Errorf("--keyspace %s given twice", name))
		}
		cfg.Keyspaces[name] = node.Keyspace{Replication: rep, WriteConsistency: f.writeCons, ReadConsistency: f.readCons}
	}
	for _, spec := range f.repairWindows {
		w, err := parseRepairWindow(spec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cfg.Repair.Windows = append(cfg.Repair.Windows, w)
	}
	cfg.Repair.Background = node.BackgroundRepair{Disabled: f.backgroundRepairDisabled, Period: f.backgroundRepairPeriod, BytesPerSecond: f.backgroundRepairBytesPerSec}
	if f.wanLatency < 0 || f.wanJitter < 0 {
		errs = append(errs, errors.New("--wan-latency and --wan-jitter must not be negative"))
	}
	if f.wanLatency > 0 || f.wanJitter > 0 {
		if len(f.wanPeers) == 0 {
			errs = append(errs, errors.New("--wan-latency needs the peers' addresses and datacenters (--wan-peer ADDR=DC)"))
		}
		cfg.WANEmulation = &node.WANEmulation{Latency: f.wanLatency, Jitter: f.wanJitter, Peers: f.wanPeers}
	} else if len(f.wanPeers) > 0 {
		errs = append(errs, errors.New("--wan-peer needs --wan-latency"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

// parseKeyspace reads NAME:DC=N,DC=N.
func parseKeyspace(spec string) (string, map[string]int, error) {
	bad := fmt.Errorf("--keyspace %q: want NAME:DC=N,DC=N (e.g. default:east=3,west=3)", spec)
	name, reps, ok := strings.Cut(spec, ":")
	if !ok || name == "" || reps == "" {
		return "", nil, bad
	}
	rep := map[string]int{}
	for _, part := range strings.Split(reps, ",") {
		dc, n, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || dc == "" {
			return "", nil, bad
		}
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			return "", nil, fmt.Errorf("--keyspace %q: replicas of %s must be a number >= 0", spec, dc)
		}
		if _, dup := rep[dc]; dup {
			return "", nil, fmt.Errorf("--keyspace %q: %s given twice", spec, dc)
		}
		rep[dc] = v
	}
	return name, rep, nil
}

// parseRepairWindow reads "A,B;CRON;DURATION[;BYTES_PER_SECOND]".
func parseRepairWindow(spec string) (node.RepairWindow, error) {
	bad := func(why string) error {
		return fmt.Errorf(`--repair-window %q: %s (want "A,B;CRON;DURATION[;BYTES_PER_SECOND]", e.g. "east,west;0 2 * * *;2h")`, spec, why)
	}
	parts := strings.Split(spec, ";")
	if len(parts) < 3 || len(parts) > 4 {
		return node.RepairWindow{}, bad("wrong number of fields")
	}
	pair := strings.Split(parts[0], ",")
	if len(pair) != 2 || pair[0] == "" || pair[1] == "" {
		return node.RepairWindow{}, bad("the pair must name two datacenters")
	}
	w := node.RepairWindow{Pair: pair, Cron: strings.TrimSpace(parts[1])}
	d, err := time.ParseDuration(strings.TrimSpace(parts[2]))
	if err != nil {
		return node.RepairWindow{}, bad("bad duration")
	}
	w.Duration = d
	if len(parts) == 4 {
		if w.BytesPerSecond, err = strconv.ParseInt(strings.TrimSpace(parts[3]), 10, 64); err != nil || w.BytesPerSecond <= 0 {
			return node.RepairWindow{}, bad("bytes per second must be a positive integer")
		}
	}
	return w, nil
}

type clientConfigFlags struct {
	dc, keyspace   string
	nodes, regions []string
	certsDir, name string
	ca, cert, key  string
	timeout        time.Duration
	out, header    string
	overwrite      bool
	nodeConfigs    []string
	http           map[string]string
}

func newConfigClientCmd() *cobra.Command {
	f := &clientConfigFlags{}
	cmd := &cobra.Command{
		Use:   "client --dc DC --node ID@DC=ADDR... --certs-dir DIR --name NAME",
		Short: "Write a client configuration (for the CLI's --config and client.LoadConfig)",
		Long: `client writes a client configuration to --out (default stdout): the nodes to
talk to (--node ID@DC=HOST:PORT, repeatable, the QUIC address as the client
reaches it), the client's own datacenter (--dc: its nodes are tried first) and
its certificate: --certs-dir DIR --name NAME names DIR/ca.pem, DIR/NAME.pem
and DIR/NAME-key.pem as meridian cert create-client writes them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config()
			if err != nil {
				return err
			}
			b, err := yaml.Marshal(cfg)
			if err != nil {
				return err
			}
			header := f.header
			if header == "" {
				header = "Meridian client configuration, written by meridian config client.\nUse it with: meridian --config FILE get KEY"
			}
			b = append(commentLines(header), b...)
			return writeChecked(cmd.OutOrStdout(), f.out, f.overwrite, b, func(path string) error {
				_, err := client.LoadConfig(path)
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dc, "dc", "", "the client's datacenter (default the first node's)")
	fl.StringArrayVar(&f.nodes, "node", nil, "ID@DC=HOST:PORT of a node (repeatable)")
	fl.StringArrayVar(&f.nodeConfigs, "node-config", nil, "take a node's id, datacenter and address (advertise, else listen), and its HTTP gateway if it has one, from its configuration file (repeatable)")
	fl.StringToStringVar(&f.http, "http", nil, "ID=https://HOST:PORT of a node's HTTP gateway, for HTTP clients (repeatable, or comma-separated)")
	fl.StringSliceVar(&f.regions, "regions", nil, "failover order of the other regions (default: as the nodes are listed)")
	fl.StringVar(&f.keyspace, "keyspace", "", "default keyspace (default \"default\")")
	fl.DurationVar(&f.timeout, "timeout", 0, "request timeout (default 5s)")
	fl.StringVar(&f.certsDir, "certs-dir", "", "certificates directory: DIR/ca.pem, DIR/NAME.pem, DIR/NAME-key.pem")
	fl.StringVar(&f.name, "name", "client", "the client certificate's name (meridian cert create-client --name)")
	fl.StringVar(&f.ca, "tls-ca", "", "cluster CA certificate (overrides --certs-dir)")
	fl.StringVar(&f.cert, "tls-cert", "", "client certificate (overrides --certs-dir)")
	fl.StringVar(&f.key, "tls-key", "", "client key (overrides --certs-dir)")
	fl.StringVar(&f.out, "out", "-", "file to write (- for stdout)")
	fl.BoolVar(&f.overwrite, "overwrite", false, "replace an existing --out file")
	fl.StringVar(&f.header, "comment", "", "comment written at the top of the file")
	return cmd
}

func (f *clientConfigFlags) config() (*client.Config, error) {
	var errs []error
	cfg := &client.Config{DC: f.dc, Keyspace: f.keyspace, Regions: f.regions, Timeout: f.timeout}
	for _, file := range f.nodeConfigs {
		nc, err := node.LoadConfig(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		addr := nc.Advertise
		if addr == "" {
			addr = nc.Listen
		}
		cfg.Nodes = append(cfg.Nodes, client.Node{ID: nc.ID, DC: nc.DC, Addr: addr})
		if nc.HTTP != "" {
			if cfg.HTTP == nil {
				cfg.HTTP = map[string]string{}
			}
			cfg.HTTP[nc.ID] = "https://" + nc.HTTP
		}
	}
	for id, url := range f.http {
		if id == "" || !strings.HasPrefix(url, "https://") {
			errs = append(errs, fmt.Errorf("--http %s=%s: want ID=https://HOST:PORT", id, url))
			continue
		}
		if cfg.HTTP == nil {
			cfg.HTTP = map[string]string{}
		}
		cfg.HTTP[id] = url
	}
	for _, spec := range f.nodes {
		id, rest, ok1 := strings.Cut(spec, "@")
		dc, addr, ok2 := strings.Cut(rest, "=")
		if !ok1 || !ok2 || id == "" || dc == "" || addr == "" {
			errs = append(errs, fmt.Errorf("--node %q: want ID@DC=HOST:PORT (e.g. east-1@east=10.0.1.5:7000)", spec))
			continue
		}
		cfg.Nodes = append(cfg.Nodes, client.Node{ID: id, DC: dc, Addr: addr})
	}
	if len(cfg.Nodes) == 0 {
		errs = append(errs, errors.New("name at least one node (--node or --node-config)"))
	}
	dcs := map[string]bool{}
	ids := map[string]bool{}
	for _, n := range cfg.Nodes {
		dcs[n.DC] = true
		if ids[n.ID] {
			errs = append(errs, fmt.Errorf("node %s listed twice", n.ID))
		}
		ids[n.ID] = true
	}
	if cfg.DC == "" && len(cfg.Nodes) > 0 {
		cfg.DC = cfg.Nodes[0].DC
	}
	if cfg.DC != "" && len(cfg.Nodes) > 0 && !dcs[cfg.DC] {
		errs = append(errs, fmt.Errorf("--dc %s: no node listed there (datacenters: %s)", cfg.DC, strings.Join(sortedKeys(dcs), ", ")))
	}
	for _, r := range f.regions {
		if !dcs[r] {
			errs = append(errs, fmt.Errorf("--regions: no node listed in %s", r))
		}
	}
	if f.certsDir != "" {
		cfg.TLS = wan.TLSFiles{CA: filepath.Join(f.certsDir, node.CACertFile), Cert: node.CertFile(f.certsDir, f.name), Key: node.KeyFile(f.certsDir, f.name)}
	}
	if f.ca != "" {
		cfg.TLS.CA = f.ca
	}
	if f.cert != "" {
		cfg.TLS.Cert = f.cert
	}
	if f.key != "" {
		cfg.TLS.Key = f.key
	}
	if cfg.TLS.CA == "" || cfg.TLS.Cert == "" || cfg.TLS.Key == "" {
		errs = append(errs, errors.New("the client needs the CA, its certificate and key: --certs-dir DIR [--name NAME], or --tls-ca, --tls-cert and --tls-key"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

func newConfigGossipKeyCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "gossip-key [--out FILE]",
		Short: "Make a random gossip encryption key (base64 of 32 bytes)",
		Long: `gossip-key makes the key that encrypts the cluster's gossip: every node's
gossip_keys must hold it (config node --gossip-key-file FILE). Written to
--out with mode 0600, never over an existing file; or printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return err
			}
			enc := base64.StdEncoding.EncodeToString(key) + "\n"
			if out == "" || out == "-" {
				_, err := io.WriteString(cmd.OutOrStdout(), enc)
				return err
			}
			fh, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				if errors.Is(err, os.ErrExist) {
					return fmt.Errorf("%s already exists: a new key would split the cluster's gossip (rotate by listing both keys)", out)
				}
				return err
			}
			if _, err := fh.WriteString(enc); err != nil {
				fh.Close()
				return err
			}
			return fh.Close()
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write (default stdout)")
	return cmd
}

// commentLines turns text into YAML comment lines.
func commentLines(text string) []byte {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString("# " + line + "\n")
	}
	return []byte(b.String())
}

// writeChecked writes b to out ("-": w) after check accepted it as a file.
// A file is written beside its destination and renamed into place, so a
// refused configuration never replaces a good one.
func writeChecked(w io.Writer, out string, overwrite bool, b []byte, check func(path string) error) error {
	dir := os.TempDir()
	if out != "-" {
		dir = filepath.Dir(out)
		if _, err := os.Stat(out); err == nil && !overwrite {
			return fmt.Errorf("%s already exists (use --overwrite to replace it)", out)
		}
	}
	tmp, err := os.CreateTemp(dir, ".meridian-config-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := check(tmp.Name()); err != nil {
		return fmt.Errorf("the configuration would be refused: %w", err)
	}
	if out == "-" {
		_, err := w.Write(b)
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

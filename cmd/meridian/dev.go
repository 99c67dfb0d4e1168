package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/devcluster"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/telemetry"
	"github.com/meridian-kv/meridian/telemetry/otelsetup"
	"github.com/meridian-kv/meridian/wan"
)

type devFlags struct {
	dir            string
	regions        []string
	nodesPerRegion int
	replicas       int
	wanLatency     time.Duration
	basePort       int
	configOnly     bool
	logFormat      string
	noEncryption   bool
}

func newDevCmd() *cobra.Command {
	f := &devFlags{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local multi-region cluster in one process (or write its configs with --config-only)",
		Long: `dev starts a whole multi-region Meridian cluster on loopback: it creates a
cluster CA and certificates, starts every node in this process with emulated
WAN latency between regions, writes DIR/client.yaml for the CLI and the Go
client, and runs until Ctrl-C. Data stays in DIR and survives restarts.

With --config-only it writes DIR/nodes/<node>.yaml (one per node), the
certificates and DIR/client.yaml, and exits; run each node with
meridian node --config DIR/nodes/<node>.yaml.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDev(cmd, f) },
	}
	cmd.Flags().StringVar(&f.dir, "dir", defaultDevDir, "directory for certificates, configurations and data")
	cmd.Flags().StringSliceVar(&f.regions, "regions", []string{"east", "west", "central"}, "regions (datacenters)")
	cmd.Flags().IntVar(&f.nodesPerRegion, "nodes-per-region", 3, "nodes in each region")
	cmd.Flags().IntVar(&f.replicas, "replicas", 0, "replicas per region of the default keyspace (default min(3, nodes-per-region))")
	cmd.Flags().DurationVar(&f.wanLatency, "wan-latency", 40*time.Millisecond, "emulated one-way latency between regions")
	cmd.Flags().IntVar(&f.basePort, "base-port", 7100, "first port: nodes take consecutive ports, QUIC (UDP) first, then gossip, admin and HTTP gateway ports (0 = any free ports)")
	cmd.Flags().BoolVar(&f.configOnly, "config-only", false, "write configurations and certificates, then exit")
	cmd.Flags().StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	cmd.Flags().BoolVar(&f.noEncryption, "no-encryption", false, "store values unsealed (by default every node encrypts them at rest under the key in DIR/"+devcluster.KeyFile+")")
	return cmd
}

func runDev(cmd *cobra.Command, f *devFlags) error {
	if f.wanLatency < 0 {
		return errors.New("--wan-latency must not be negative")
	}
	if !f.configOnly {
		tuneGC() // the nodes run in this process
	}
	cluster, err := devcluster.Write(devcluster.Options{
		Dir: f.dir, Regions: f.regions, NodesPerRegion: f.nodesPerRegion, Replicas: f.replicas,
		BasePort: f.basePort, WANLatency: f.wanLatency, NoEncryption: f.noEncryption, HTTP: true,
	})
	if err != nil {
		return err
	}
	clientFile := filepath.Join(f.dir, "client.yaml")
	if err := writeClientConfig(clientFile, cluster); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if f.configOnly {
		fmt.Fprintf(out, "wrote %d node configurations, certificates and %s\nrun each node in its own terminal:\n", len(cluster.NodeFiles), clientFile)
		for _, file := range cluster.NodeFiles {
			fmt.Fprintf(out, "  meridian node --config %s\n", file)
		}
		fmt.Fprintf(out, "then: meridian --config %s status\n", clientFile)
		return nil
	}

	if err := telemetry.CheckLogFormat(f.logFormat); err != nil {
		return err
	}
	log := slog.New(telemetry.NewLogHandler(os.Stderr, f.logFormat, slog.LevelInfo))
	em := wan.NewEmulator(time.Now().UnixNano())
	em.SetDefault(wan.Link{Latency: f.wanLatency})
	for _, c := range cluster.Nodes {
		em.Register(c.Listen, c.DC)
	}
	var nodes []*node.Node
	var tels []*otelsetup.Providers
	closeAll := func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := n.Close(); err != nil {
					log.Error("closing node", "node", n.ID(), "err", err)
				}
			}()
		}
		wg.Wait()
		for _, t := range tels {
			t.Shutdown(context.Background())
		}
	}
	for _, c := range cluster.Nodes {
		c.WANEmulation = nil // the shared emulator below covers every node
		// Each node gets providers of its own, so its spans and metrics
		// carry its id, region and rack.
		tel, err := otelsetup.Setup(cmd.Context(), otelsetup.Config{NodeID: c.ID, DC: c.DC, Rack: c.Rack})
		if err != nil {
			closeAll()
			return err
		}
		tels = append(tels, tel)
		opts := nodeOptions(log, tel)
		opts.WrapConn = func(pc net.PacketConn) net.PacketConn { return em.Wrap(pc, c.DC) }
		n, err := node.Start(c, opts)
		if err != nil {
			closeAll()
			if strings.Contains(err.Error(), "address already in use") {
				return fmt.Errorf("%w\nanother cluster may be running; stop it, or pick other ports with --base-port", err)
			}
			return err
		}
		nodes = append(nodes, n)
	}
	printDevBanner(out, f, cluster, clientFile)
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	fmt.Fprintln(out, "\nstopping the cluster…")
	closeAll()
	return nil
}

func printDevBanner(w io.Writer, f *devFlags, cluster *devcluster.Cluster, clientFile string) {
	fmt.Fprintf(w, "\nMeridian dev cluster is up: %d regions × %d nodes, %v one-way WAN latency between regions.\n",
		len(f.regions), f.nodesPerRegion, f.wanLatency)
	fmt.Fprintf(w, "Keyspace \"default\" keeps %d replicas in each region; the CLI talks to region %q.\n\n", cluster.Nodes[0].Keyspaces["default"].Replication[cluster.FirstRegion], cluster.FirstRegion)
	cfgFlag := ""
	if filepath.Clean(f.dir) != defaultDevDir {
		cfgFlag = " --config " + clientFile
	}
	fmt.Fprintf(w, "Try, in another terminal:\n")
	fmt.Fprintf(w, "  meridian%s status\n", cfgFlag)
	fmt.Fprintf(w, "  meridian%s put greeting hello\n", cfgFlag)
	fmt.Fprintf(w, "  meridian%s get greeting --consistency EACH_QUORUM\n", cfgFlag)
	fmt.Fprintf(w, "  meridian%s ring greeting\n", cfgFlag)
	fmt.Fprintf(w, "Status page: http://%s/, metrics: http://%s/metrics (one admin endpoint per node; see %s).\n", cluster.Nodes[0].Admin, cluster.Nodes[0].Admin, filepath.Join(f.dir, "nodes"))
	fmt.Fprintf(w, "HTTP gateways (HTTPS with the client certificate; listed under http: in %s):\n", clientFile)
	for _, n := range cluster.Nodes {
		if n.HTTP != "" {
			fmt.Fprintf(w, "  %-10s https://%s\n", n.ID, n.HTTP)
		}
	}
	if n := cluster.Nodes[0]; n.HTTP != "" {
		tls := cluster.ClientTLS
		fmt.Fprintf(w, "  curl --cacert %s --cert %s --key %s \\\n    -X PUT --data-binary hello https://%s/v1/kv/default/greeting\n", tls.CA, tls.Cert, tls.Key, n.HTTP)
	}
	fmt.Fprintf(w, "Go clients: client.LoadConfig(%q).\nCtrl-C stops the cluster; data stays in %s.\n", clientFile, f.dir)
}

func writeClientConfig(path string, cluster *devcluster.Cluster) error {
	cfg := client.Config{DC: cluster.FirstRegion, Keyspace: "default", TLS: cluster.ClientTLS}
	for _, n := range cluster.Nodes {
		cfg.Nodes = append(cfg.Nodes, client.Node{ID: n.ID, DC: n.DC, Addr: n.Listen})
		if n.HTTP != "" {
			if cfg.HTTP == nil {
				cfg.HTTP = map[string]string{}
			}
			cfg.HTTP[n.ID] = "https://" + n.HTTP
		}
	}
	b, err := yaml.Marshal(&cfg)
	if err != nil {
		return err
	}
	header := "# Meridian client configuration, written by meridian dev.\n# Use it with: meridian --config " + path + " get KEY\n"
	return os.WriteFile(path, append([]byte(header), b...), 0o644)
}

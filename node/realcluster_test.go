package node_test

import (
	"context"
	"maps"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/devcluster"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/wan"
)

// realCluster is an in-process multi-region cluster on real sockets: QUIC
// on loopback, real Pebble on in-memory filesystems, and the WAN emulator
// between regions. Only the benchmarks use it, since they measure real
// time; tests run on the simulated network of testCluster.
type realCluster struct {
	t      testing.TB
	em     *wan.Emulator
	dev    *devcluster.Cluster
	nodes  map[string]*node.Node
	client *client.Client
	opts   clusterOpts
	fs     map[string]vfs.FS
}

func startRealCluster(t testing.TB, o clusterOpts) *realCluster {
	t.Helper()
	if o.regions == nil {
		o.regions = []string{"east", "west", "central"}
	}
	if o.nodesPerRegion == 0 {
		o.nodesPerRegion = 3
	}
	dev, err := devcluster.Write(devcluster.Options{Dir: t.TempDir(), Regions: o.regions, NodesPerRegion: o.nodesPerRegion, Replicas: o.replicas})
	if err != nil {
		t.Fatal(err)
	}
	tc := &realCluster{t: t, em: wan.NewEmulator(1), dev: dev, nodes: map[string]*node.Node{}, opts: o}
	tc.em.SetDefault(wan.Link{Latency: o.latency})
	for _, c := range dev.Nodes {
		tc.em.Register(c.Listen, c.DC)
	}
	tc.fs = map[string]vfs.FS{}
	for _, c := range dev.Nodes {
		tc.fs[c.ID] = vfs.NewMem()
		if err := tc.start(c.ID); err != nil {
			tc.close()
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	tc.waitConverged()
	t.Logf("converged in %v", time.Since(t0))
	ccfg := &client.Config{DC: dev.FirstRegion, TLS: dev.ClientTLS, Timeout: 5 * time.Second, TracerProvider: o.tracer}
	for _, c := range dev.Nodes {
		ccfg.Nodes = append(ccfg.Nodes, client.Node{ID: c.ID, DC: c.DC, Addr: c.Listen})
	}
	tc.client, err = client.Dial(context.Background(), ccfg)
	if err != nil {
		tc.close()
		t.Fatal(err)
	}
	t.Cleanup(tc.close)
	return tc
}

// config returns the configuration of node id.
func (tc *realCluster) config(id string) node.Config {
	for _, c := range tc.dev.Nodes {
		if c.ID == id {
			c.Keyspaces = maps.Clone(c.Keyspaces) // tweaks must not touch a running node's
			c.Limits.RequestTimeout = 3 * time.Second
			if tc.opts.tweak != nil {
				tc.opts.tweak(&c)
			}
			return c
		}
	}
	tc.t.Fatalf("no node %s", id)
	return node.Config{}
}

// start (re)starts node id on its in-memory filesystem.
func (tc *realCluster) start(id string) error {
	c := tc.config(id)
	n, err := node.Start(c, node.Options{
		FS:             tc.fs[id],
		Logger:         quietLogger,
		TracerProvider: tc.opts.tracer,
		Now:            tc.opts.now,
		WrapConn:       func(pc net.PacketConn) net.PacketConn { return tc.em.Wrap(pc, c.DC) },
	})
	if err != nil {
		return err
	}
	tc.nodes[id] = n
	return nil
}

// waitConverged waits until every node's ring holds every node and every
// node has verified its peers, so the benchmark starts from a healthy
// cluster.
func (tc *realCluster) waitConverged() {
	tc.t.Helper()
	waitConverged(tc.t, tc.nodes)
}

func (tc *realCluster) close() {
	if tc.client != nil {
		tc.client.Close()
	}
	var wg sync.WaitGroup
	for _, n := range tc.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.Close()
		}()
	}
	wg.Wait()
	tc.nodes = nil
}

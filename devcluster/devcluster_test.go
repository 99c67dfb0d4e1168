package devcluster_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/devcluster"
	"github.com/meridian-kv/meridian/node"
)

// TestWriteClusterLoads: every node configuration Write returns is the one
// it wrote to disk and loads as a valid node configuration with working
// certificates; ports follow BasePort (addresses, then gossip, then admin),
// one seed per region, the client certificate is a superuser of every node,
// and encryption at rest is on.
func TestWriteClusterLoads(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	dir := t.TempDir()
	c, err := devcluster.Write(devcluster.Options{Dir: dir, Regions: []string{"east", "west"}, NodesPerRegion: 2, BasePort: 7100, WANLatency: 5 * time.Millisecond, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if c.FirstRegion != "east" || len(c.Nodes) != 4 || len(c.NodeFiles) != 4 {
		t.Fatalf("first region %q, %d nodes, %d files; want east, 4, 4", c.FirstRegion, len(c.Nodes), len(c.NodeFiles))
	}
	want := []struct{ id, dc, listen, gossip, admin string }{
		{"east-1", "east", "127.0.0.1:7100", "127.0.0.1:7104", "127.0.0.1:7108"},
		{"east-2", "east", "127.0.0.1:7101", "127.0.0.1:7105", "127.0.0.1:7109"},
		{"west-1", "west", "127.0.0.1:7102", "127.0.0.1:7106", "127.0.0.1:7110"},
		{"west-2", "west", "127.0.0.1:7103", "127.0.0.1:7107", "127.0.0.1:7111"},
	}
	for i, w := range want {
		cfg := c.Nodes[i]
		if cfg.ID != w.id || cfg.DC != w.dc || cfg.Listen != w.listen || cfg.Gossip != w.gossip || cfg.Admin != w.admin {
			t.Errorf("node %d: %s@%s listen %s gossip %s admin %s, want %+v", i, cfg.ID, cfg.DC, cfg.Listen, cfg.Gossip, cfg.Admin, w)
		}
		if c.NodeFiles[i] != filepath.Join(dir, "nodes", w.id+".yaml") {
			t.Errorf("node %s written to %s", w.id, c.NodeFiles[i])
		}
		loaded, err := node.LoadConfig(c.NodeFiles[i])
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*loaded, cfg) {
			t.Errorf("%s: the file loads as\n%+v\nWrite returned\n%+v", w.id, *loaded, cfg)
		}
		if !slices.Equal(cfg.Seeds, []string{"127.0.0.1:7104", "127.0.0.1:7106"}) {
			t.Errorf("%s: seeds %v, want the first node of each region", w.id, cfg.Seeds)
		}
		if !slices.Equal(cfg.Auth.Superusers, []string{devcluster.Principal}) {
			t.Errorf("%s: superusers %v", w.id, cfg.Auth.Superusers)
		}
		if got := cfg.Keyspaces["default"].Replication; !reflect.DeepEqual(got, map[string]int{"east": 2, "west": 2}) {
			t.Errorf("%s: default keyspace replication %v, want min(3, nodes per region) in each region", w.id, got)
		}
		if cfg.WANEmulation == nil || cfg.WANEmulation.Latency != 5*time.Millisecond || len(cfg.WANEmulation.Peers) != 4 {
			t.Errorf("%s: wan emulation %+v", w.id, cfg.WANEmulation)
		}
		if cfg.Encryption.KeyFile != filepath.Join(dir, devcluster.KeyFile) {
			t.Errorf("%s: encryption key file %q, want %q", w.id, cfg.Encryption.KeyFile, filepath.Join(dir, devcluster.KeyFile))
		}
		if _, err := cfg.TLS.Load(now); err != nil {
			t.Errorf("%s: %v", w.id, err)
		}
	}
	if !strings.HasSuffix(c.ClientTLS.Cert, string(filepath.Separator)+devcluster.Principal+".pem") {
		t.Errorf("client certificate %s, want one named %s", c.ClientTLS.Cert, devcluster.Principal)
	}
	if _, err := c.ClientTLS.Load(now); err != nil {
		t.Fatal(err)
	}
}

// TestWriteReusesSecrets: writing a dev cluster again into its directory
// keeps its CA, gossip key and encryption key, so a restarted cluster
// trusts its old certificates and reads its old data; NoEncryption leaves
// encryption off.
func TestWriteReusesSecrets(t *testing.T) {
	dir := t.TempDir()
	opts := devcluster.Options{Dir: dir, Regions: []string{"solo"}, NodesPerRegion: 1, BasePort: 7100}
	first, err := devcluster.Write(opts)
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ca, keys := read(first.ClientTLS.CA), read(first.Nodes[0].Encryption.KeyFile)
	second, err := devcluster.Write(opts)
	if err != nil {
		t.Fatal(err)
	}
	if read(second.ClientTLS.CA) != ca {
		t.Error("a second Write replaced the CA")
	}
	if !slices.Equal(second.Nodes[0].GossipKeys, first.Nodes[0].GossipKeys) {
		t.Error("a second Write replaced the gossip key")
	}
	if read(filepath.Join(dir, devcluster.KeyFile)) != keys {
		t.Error("a second Write replaced the encryption key file")
	}
	if second.Nodes[0].Encryption.KeyFile != first.Nodes[0].Encryption.KeyFile {
		t.Errorf("key file %q, then %q", first.Nodes[0].Encryption.KeyFile, second.Nodes[0].Encryption.KeyFile)
	}
	opts.NoEncryption = true
	third, err := devcluster.Write(opts)
	if err != nil {
		t.Fatal(err)
	}
	if third.Nodes[0].Encryption.KeyFile != "" {
		t.Errorf("NoEncryption wrote key file %q into the configuration", third.Nodes[0].Encryption.KeyFile)
	}
}

// TestWriteRefusesBadOptions: options that cannot describe a cluster are
// refused before anything is written.
func TestWriteRefusesBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts devcluster.Options
		want string
	}{
		{"no directory", devcluster.Options{}, "needs a directory"},
		{"negative nodes", devcluster.Options{NodesPerRegion: -1}, "nodes per region must be positive"},
		{"more replicas than nodes", devcluster.Options{NodesPerRegion: 2, Replicas: 3}, "3 replicas per region need at least that many nodes per region, not 2"},
		{"repeated region", devcluster.Options{Regions: []string{"east", "east"}}, "distinct and non-empty"},
		{"empty region", devcluster.Options{Regions: []string{"east", ""}}, "distinct and non-empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name != "no directory" {
				tc.opts.Dir = filepath.Join(t.TempDir(), "dev")
			}
			_, err := devcluster.Write(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Write: %v, want an error containing %q", err, tc.want)
			}
			if tc.opts.Dir != "" {
				if _, err := os.Stat(tc.opts.Dir); err == nil {
					t.Errorf("%s was created", tc.opts.Dir)
				}
			}
		})
	}
}

// TestOneRegionHasNoWANEmulation: a one-region cluster (meridian bench
// starts one) gets no WAN emulation, whose wrapped socket would cost QUIC
// its batching for nothing.
func TestOneRegionHasNoWANEmulation(t *testing.T) {
	for _, regions := range [][]string{{"east"}, {"east", "west"}} {
		c, err := devcluster.Write(devcluster.Options{Dir: t.TempDir(), Regions: regions, NodesPerRegion: 1, BasePort: 7100, WANLatency: 40 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range c.Nodes {
			if got, want := n.WANEmulation != nil, len(regions) > 1; got != want {
				t.Errorf("regions %v: node %s has WAN emulation %v, want %v", regions, n.ID, got, want)
			}
		}
	}
}

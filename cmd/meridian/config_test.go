package main

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/devcluster"
	"github.com/meridian-kv/meridian/node"
)

// configNodeArgs are the config node flags that reproduce cfg, with
// certificates in certs and the gossip key in keyFile.
func configNodeArgs(cfg *node.Config, certs, keyFile, out string) []string {
	args := []string{"config", "node", "--id", cfg.ID, "--dc", cfg.DC, "--rack", cfg.Rack,
		"--listen", cfg.Listen, "--gossip", cfg.Gossip, "--admin", cfg.Admin, "--data-dir", cfg.DataDir,
		"--certs-dir", certs, "--gossip-key-file", keyFile, "--gossip-profile", cfg.GossipProfile, "--out", out, "--overwrite"}
	for _, s := range cfg.Seeds {
		args = append(args, "--seed", s)
	}
	for _, s := range cfg.Auth.Superusers {
		args = append(args, "--superuser", s)
	}
	if cfg.HTTP != "" {
		args = append(args, "--http", cfg.HTTP)
	}
	if f := cfg.Encryption.KeyFile; f != "" {
		args = append(args, "--encryption-key-file", f)
	}
	for name, ks := range cfg.Keyspaces {
		var reps []string
		for dc, n := range ks.Replication {
			reps = append(reps, dc+"="+strconv.Itoa(n))
		}
		sort.Strings(reps)
		args = append(args, "--keyspace", name+":"+strings.Join(reps, ","))
	}
	if w := cfg.WANEmulation; w != nil {
		args = append(args, "--wan-latency", w.Latency.String())
		for addr, dc := range w.Peers {
			args = append(args, "--wan-peer", addr+"="+dc)
		}
	}
	return args
}

// TestConfigReproducesDev: for every node configuration and the client
// configuration dev --config-only writes, meridian config writes one that
// loads to the same settings.
func TestConfigReproducesDev(t *testing.T) {
	dir := t.TempDir()
	if _, err := certCLI("dev", "--config-only", "--dir", dir, "--base-port", portBlock(), "--regions", "east,west,central", "--nodes-per-region", "2", "--wan-latency", "7ms"); err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(dir, "certs")
	files, _ := filepath.Glob(filepath.Join(dir, "nodes", "*.yaml"))
	if len(files) != 6 {
		t.Fatalf("dev wrote %v", files)
	}
	var nodeFiles []string
	for _, file := range files {
		want, err := node.LoadConfig(file)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "again-"+want.ID+".yaml")
		if _, err := certCLI(configNodeArgs(want, certs, filepath.Join(certs, "gossip.key"), out)...); err != nil {
			t.Fatal(err)
		}
		got, err := node.LoadConfig(out)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: config node gave\n%+v\ndev wrote\n%+v", want.ID, got, want)
		}
		nodeFiles = append(nodeFiles, out)
	}
	want, err := client.LoadConfig(filepath.Join(dir, "client.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"config", "client", "--dc", want.DC, "--keyspace", want.Keyspace, "--certs-dir", certs, "--name", devcluster.Principal, "--out", filepath.Join(dir, "client-again.yaml")}
	for _, n := range want.Nodes {
		args = append(args, "--node", n.ID+"@"+n.DC+"="+n.Addr)
	}
	if len(want.HTTP) != 6 {
		t.Errorf("dev listed %d HTTP gateways in client.yaml, want 6: %v", len(want.HTTP), want.HTTP)
	}
	for id, url := range want.HTTP {
		args = append(args, "--http", id+"="+url)
	}
	if _, err := certCLI(args...); err != nil {
		t.Fatal(err)
	}
	got, err := client.LoadConfig(filepath.Join(dir, "client-again.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config client gave\n%+v\ndev wrote\n%+v", got, want)
	}
	// --node-config takes the nodes from their configurations.
	args = []string{"config", "client", "--certs-dir", certs}
	for _, f := range files {
		args = append(args, "--node-config", f)
	}
	out, err := certCLI(args...)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range want.Nodes {
		if !strings.Contains(out, n.Addr) {
			t.Errorf("config client --node-config left out %s:\n%s", n.ID, out)
		}
	}
}

// TestConfigRefusesBadInput: a configuration the node or client would
// refuse is not written, the error says what is wrong, and an existing file
// is kept.
func TestConfigRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	key, err := certCLI("config", "gossip-key")
	if err != nil {
		t.Fatal(err)
	}
	key = strings.TrimSpace(key)
	out := filepath.Join(dir, "n.yaml")
	good := []string{"config", "node", "--id", "a", "--dc", "east", "--listen", "127.0.0.1:7000", "--gossip", "127.0.0.1:7946",
		"--data-dir", "/var/lib/meridian", "--certs-dir", "/etc/meridian/certs", "--gossip-key", key, "--keyspace", "default:east=3,west=3", "--out", out}
	if _, err := certCLI(good...); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(out)
	cfg, err := node.LoadConfig(out)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.Cert != "/etc/meridian/certs/a.pem" || cfg.TLS.Key != "/etc/meridian/certs/a-key.pem" || cfg.Keyspaces["default"].Replication["west"] != 3 {
		t.Fatalf("config node wrote %+v", cfg)
	}
	for _, c := range []struct {
		change []string
		want   string
	}{
		{nil, "already exists"},
		{[]string{"--overwrite", "--keyspace", "other:east"}, "want NAME:DC=N"},
		{[]string{"--overwrite", "--keyspace", "other:east=0"}, "keeps no copy"},
		{[]string{"--overwrite", "--listen", "nowhere"}, "listen"},
		{[]string{"--overwrite", "--gossip-key", "short"}, "gossip_keys[1]"},
		{[]string{"--overwrite", "--repair-window", "east;* * * * *;1h"}, "two datacenters"},
		{[]string{"--overwrite", "--repair-window", "east,west;61 * * * *;1h"}, "repair"},
		{[]string{"--overwrite", "--wan-latency", "10ms"}, "--wan-peer"},
		{[]string{"--overwrite", "--write-consistency", "MOST"}, "keyspace"},
		{[]string{"--overwrite", "--superuser", "a", "--superuser", "a"}, "listed twice"},
		{[]string{"--overwrite", "--encryption-key-file", filepath.Join(t.TempDir(), "none.yaml")}, "--encryption-key-file"},
	} {
		_, err := certCLI(append(append([]string{}, good...), c.change...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %q", c.change, err, c.want)
		}
	}
	if after, _ := os.ReadFile(out); string(after) != string(before) {
		t.Error("a refused configuration replaced the file")
	}
	// Missing everything: one error lists every required field.
	_, err = certCLI("config", "node", "--keyspace", "default:east=1")
	for _, want := range []string{"id is required", "dc is required", "data_dir", "tls.ca", "gossip_keys"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("empty config node: %v, want %q", err, want)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--node", "a@east=127.0.0.1:7000"}, "certificate"},
		{[]string{"--node", "a-east-127.0.0.1:7000", "--certs-dir", dir}, "ID@DC=HOST:PORT"},
		{[]string{"--node", "a@east=127.0.0.1:7000", "--dc", "west", "--certs-dir", dir}, "no node listed there"},
	} {
		_, err := certCLI(append([]string{"config", "client"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config client %v: %v, want %q", c.args, err, c.want)
		}
	}
	// gossip-key never replaces a key.
	keyFile := filepath.Join(dir, "gossip.key")
	if _, err := certCLI("config", "gossip-key", "--out", keyFile); err != nil {
		t.Fatal(err)
	}
	if _, err := certCLI("config", "gossip-key", "--out", keyFile); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second gossip-key: %v", err)
	}
}

// TestProcessesFromCertAndConfig: nodes whose certificates come from
// meridian cert and whose configurations come from meridian config join
// each other and serve a client configured by meridian config client; the
// health command reports a live node healthy and a dead one not.
func TestProcessesFromCertAndConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes; skipped in -short")
	}
	// dev only picks the free ports; every file it wrote is replaced.
	pc := newProcCluster(t, "--regions", "east,west", "--nodes-per-region", "1", "--wan-latency", "5ms")
	ids := []string{"east-1", "west-1"}
	certs := filepath.Join(pc.dir, "certs")
	os.Remove(filepath.Join(certs, "gossip.key"))
	pc.run("cert", "create-ca", "--certs-dir", certs, "--overwrite")
	pc.run("config", "gossip-key", "--out", filepath.Join(certs, "gossip.key"))
	pc.run("cert", "create-client", "--certs-dir", certs, "--name", "admin", "--overwrite")
	clientArgs := []string{"config", "client", "--certs-dir", certs, "--name", "admin", "--dc", "west", "--out", filepath.Join(pc.dir, "client.yaml"), "--overwrite"}
	var cfgs []*node.Config
	for _, id := range ids {
		file := filepath.Join(pc.dir, "nodes", id+".yaml")
		cfg, err := node.LoadConfig(file)
		if err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, cfg)
		pc.run("cert", "create-node", "--certs-dir", certs, "--id", id, "--dc", cfg.DC, "--host", "127.0.0.1", "--overwrite")
		pc.run(configNodeArgs(cfg, certs, filepath.Join(certs, "gossip.key"), file)...)
		clientArgs = append(clientArgs, "--node-config", file)
	}
	pc.run(clientArgs...)
	pc.startAll(ids)
	pc.run("put", "k", "v1", "--consistency", "EACH_QUORUM")
	if out := pc.run("get", "k", "--consistency", "EACH_QUORUM"); !strings.Contains(out, "v1") {
		t.Fatalf("get: %q", out)
	}
	if out, err := pc.try("health", "--admin", cfgs[0].Admin); err != nil || !strings.Contains(out, "healthy") {
		t.Fatalf("health of a live node: %v %q", err, out)
	}
	pc.kill("east-1")
	if out, err := pc.try("health", "--admin", cfgs[0].Admin, "--timeout", "1s"); err == nil {
		t.Fatalf("health of a killed node: %q", out)
	}
}

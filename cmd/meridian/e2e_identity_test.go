package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/node"
)

// nodeConfig loads node id's generated configuration.
func (pc *procCluster) nodeConfig(id string) *node.Config {
	pc.t.Helper()
	cfg, err := node.LoadConfig(filepath.Join(pc.dir, "nodes", id+".yaml"))
	if err != nil {
		pc.t.Fatal(err)
	}
	return cfg
}

// getJSON reads key through the CLI with extra flags and returns its
// sorted values.
func (pc *procCluster) getJSON(key string, flags ...string) ([]string, error) {
	out, err := pc.try(append([]string{"get", key, "--json"}, flags...)...)
	if err != nil {
		return nil, err
	}
	var res struct {
		Values  []string `json:"values"`
		Context string   `json:"context"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return nil, fmt.Errorf("get --json: %w: %s", err, out)
	}
	slices.Sort(res.Values)
	return res.Values, nil
}

// contextOf returns the causal context a read of key through node via
// returns.
func (pc *procCluster) contextOf(key, via string) string {
	pc.t.Helper()
	out := pc.run("get", key, "--json", "--node", via, "--consistency", "ALL")
	var res struct {
		Context string `json:"context"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		pc.t.Fatal(err)
	}
	return res.Context
}

// gated reports whether status, as asker sees it, shows id gating reads.
func (pc *procCluster) gated(asker, id string) bool {
	out, err := pc.try("status", "--json", "--node", asker)
	if err != nil {
		return false
	}
	var st struct {
		Nodes []struct {
			ID        string `json:"id"`
			ReadGated bool   `json:"read_gated"`
		} `json:"nodes"`
	}
	if json.Unmarshal([]byte(out), &st) != nil {
		return false
	}
	for _, n := range st.Nodes {
		if n.ID == id {
			return n.ReadGated
		}
	}
	return false
}

// TestProcessesWipedDiskKeepsAcknowledgedWrites is the disk-replacement
// defect on real processes: west-1 writes v1 and then v2 (with v1's
// context), is killed, loses its data directory and restarts; a blind write
// of v3 through it is acknowledged at EACH_QUORUM. Before incarnations the
// restarted node re-minted the dot of v1 and v3 vanished; now v3 must be a
// sibling of v2 on every replica, and the node says loudly that it was
// wiped and gates its reads until repaired.
func TestProcessesWipedDiskKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six node processes; skipped in -short")
	}
	pc := newProcCluster(t, "--regions", "east,west", "--wan-latency", "5ms")
	ids := twoRegions
	pc.startAll(ids)

	const victim = "west-1"
	pc.run("put", "k", "v1", "--node", victim, "--consistency", "ALL")
	pc.run("put", "k", "v2", "--node", victim, "--consistency", "ALL", "--context", pc.contextOf("k", victim))

	pc.kill(victim)
	if err := os.RemoveAll(pc.nodeConfig(victim).DataDir); err != nil {
		t.Fatal(err)
	}
	pc.start(victim)
	pc.waitAllSeeAll(ids)
	waitFor(t, 30*time.Second, func() error {
		_, err := pc.try("put", "k", "v3", "--node", victim, "--consistency", "EACH_QUORUM")
		return err
	})
	waitFor(t, 30*time.Second, func() error {
		if !pc.gated("east-1", victim) {
			return fmt.Errorf("status does not show %s gating its reads", victim)
		}
		return nil
	})
	logs, err := os.ReadFile(filepath.Join(pc.dir, victim+".log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "NOT THE ONE THE CLUSTER KNEW") {
		t.Errorf("the wiped node did not say that it was wiped; its log:\n%s", logs)
	}

	waitFor(t, 60*time.Second, func() error {
		_, err := pc.try("repair", "--now", "--json", "--node", "east-1")
		return err
	})
	waitFor(t, 30*time.Second, func() error {
		if pc.gated("east-1", victim) {
			return fmt.Errorf("%s still gates its reads after a full repair", victim)
		}
		return nil
	})
	vals, err := pc.getJSON("k", "--consistency", "ALL")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(vals, []string{"v2", "v3"}) {
		t.Fatalf("after the wipe, get k --consistency ALL returns %q, want [v2 v3]: the acknowledged v3 was lost", vals)
	}
}

// TestProcessesLostDataDirectoryStopsAcknowledging is the vanished-disk
// defect: west-1's data directory is deleted while it runs. It must stop
// acknowledging writes, answer /healthz with 503 and show as failed in
// status; restarted on the empty directory, it must not answer "not found"
// for keys acknowledged before.
func TestProcessesLostDataDirectoryStopsAcknowledging(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six node processes; skipped in -short")
	}
	pc := newProcCluster(t, "--regions", "east,west", "--wan-latency", "5ms")
	ids := twoRegions
	pc.startAll(ids)
	const victim = "west-1"
	var keys []string
	for i := range 10 {
		key := fmt.Sprintf("kept-%d", i)
		pc.run("put", key, "v-"+key, "--consistency", "ALL")
		keys = append(keys, key)
	}

	cfg := pc.nodeConfig(victim)
	if err := os.RemoveAll(cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	// A write through the node is not acknowledged once its disk is gone
	// (its own copy would not survive a restart).
	if out, err := pc.try("put", "after-loss", "x", "--node", victim, "--consistency", "ONE"); err == nil {
		t.Fatalf("a node whose data directory was deleted acknowledged a write: %s", out)
	}
	waitFor(t, 30*time.Second, func() error {
		resp, err := http.Get("http://" + cfg.Admin + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("/healthz of %s answers %d, want 503", victim, resp.StatusCode)
		}
		return nil
	})
	for _, asker := range []string{victim, "east-1"} {
		pc.waitStatusOf(asker, victim+" failed as "+asker+" sees it", 30*time.Second, func(st statusJSON) bool {
			for _, n := range st.Nodes {
				if n.ID == victim {
					return n.State == "failed"
				}
			}
			return false
		})
	}
	// The rest of the cluster goes on: EACH_QUORUM needs two of three in
	// west.
	pc.run("put", "during-loss", "v", "--consistency", "EACH_QUORUM", "--node", "east-1")

	pc.kill(victim)
	pc.start(victim)
	pc.waitAllSeeAll(ids)
	for _, key := range keys {
		vals, err := pc.getJSON(key, "--node", victim, "--consistency", "ONE")
		if err != nil {
			t.Fatalf("get %s at ONE through the restarted node: %v", key, err)
		}
		if !slices.Equal(vals, []string{"v-" + key}) {
			t.Fatalf("get %s at ONE through the node restarted on an empty directory returns %q, want the acknowledged value", key, vals)
		}
	}
}

// TestProcessesSecondNodeWithTheSameIDIsRefused starts a second process
// that claims east-2's id (with east-2's certificate, on other addresses
// and another data directory) while east-2 runs: it must stop by itself
// with an error naming the conflict, and east-2 must go on serving.
func TestProcessesSecondNodeWithTheSameIDIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes; skipped in -short")
	}
	pc := newProcCluster(t, "--regions", "east", "--nodes-per-region", "4", "--replicas", "3", "--wan-latency", "5ms")
	ids := []string{"east-1", "east-2", "east-3"}
	pc.startAll(ids)

	// The impostor: east-4's addresses and directory, east-2's name and
	// certificate.
	raw, err := os.ReadFile(filepath.Join(pc.dir, "nodes", "east-4.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.NewReplacer("id: east-4", "id: east-2", "east-4.pem", "east-2.pem", "east-4-key.pem", "east-2-key.pem").Replace(string(raw))
	impostor := filepath.Join(pc.dir, "nodes", "impostor.yaml")
	if err := os.WriteFile(impostor, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pc.bin, "node", "--config", impostor)
	out, err := os.Create(filepath.Join(pc.dir, "impostor.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		logs, _ := os.ReadFile(out.Name())
		if err == nil || !strings.Contains(string(logs), "another live node uses this node's id") {
			t.Fatalf("the impostor exited with %v; its log:\n%s", err, logs)
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-exited
		logs, _ := os.ReadFile(out.Name())
		t.Fatalf("a second process with east-2's id is still running after 2 minutes; its log:\n%s", logs)
	}
	pc.waitAllSeeAll(ids)
	pc.run("put", "after-impostor", "v", "--node", "east-2", "--consistency", "ALL")
}

package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// oneRegion are the nodes of `dev --config-only --regions east`.
var oneRegion = []string{"east-1", "east-2", "east-3"}

// TestProcessesEncryptAtRest runs a region of three `meridian node`
// processes as meridian dev configures them (encryption at rest on): a
// value written while every node is up, and one written while a replica is
// down (so a hint of it is kept), must not appear in any file under the
// nodes' data directories once the nodes stopped gracefully — while their
// keys do (keys are not encrypted), so the scan is not vacuous. The same
// run with --no-encryption finds the values (so the check can fail).
// Then the keys are rotated: a new active key loaded on SIGHUP, meridian
// reencrypt, the old key removed, restarts: every value is still read on
// every replica.
func TestProcessesEncryptAtRest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes; skipped in -short")
	}
	pc := newProcCluster(t, "--regions", "east")
	defer pc.dumpLogsOnFailure(oneRegion)
	keyFile := pc.nodeConfig("east-1").Encryption.KeyFile
	if keyFile == "" {
		t.Fatal("meridian dev wrote node configurations without encryption.key_file")
	}
	for _, id := range oneRegion[1:] {
		if got := pc.nodeConfig(id).Encryption.KeyFile; got != keyFile {
			t.Fatalf("%s names key file %q, east-1 %q", id, got, keyFile)
		}
	}

	canaries := pc.writeCanaries()
	for key, value := range canaries {
		files := pc.filesHolding([]byte(value))
		if len(files) > 0 {
			t.Errorf("value of %s is in plaintext in %v", key, files)
		}
		if len(pc.filesHolding([]byte(key))) == 0 {
			t.Errorf("vacuous: key %s is in no file under %s (keys are stored in plaintext)", key, pc.dataDir())
		}
	}

	t.Run("control without encryption", func(t *testing.T) {
		ctl := newProcClusterFrom(t, pc.bin, "--regions", "east", "--no-encryption")
		defer ctl.dumpLogsOnFailure(oneRegion)
		if kf := ctl.nodeConfig("east-1").Encryption.KeyFile; kf != "" {
			t.Fatalf("--no-encryption wrote key file %q into the configuration", kf)
		}
		for key, value := range ctl.writeCanaries() {
			if len(ctl.filesHolding([]byte(value))) == 0 {
				t.Errorf("the value of %s is in no file under %s: the scan cannot see values", key, ctl.dataDir())
			}
		}
	})

	// Rotate without a restart: k2 becomes active, and SIGHUP has every
	// node reload its keys.
	pc.startAll(oneRegion)
	pc.waitStatus("the hint delivered", 30*time.Second, noHints)
	out := pc.run("keys", "generate", "--file", keyFile, "--id", "k2", "--activate")
	t.Logf("%s", bytes.TrimSpace([]byte(out)))
	for _, id := range oneRegion {
		if err := pc.procs[id].Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range oneRegion {
		waitFor(t, 10*time.Second, func() error { return pc.loggedReload(id, "k2") })
	}
	canaries["after-rotation"] = "v-after-rotation"
	pc.run("put", "after-rotation", canaries["after-rotation"])

	out = pc.run("reencrypt", "--json")
	var rep struct {
		Nodes []struct {
			Node       string           `json:"node"`
			ActiveKey  string           `json:"active_key"`
			Rewritten  int64            `json:"rewritten"`
			Current    int64            `json:"current"`
			ByKey      map[string]int64 `json:"by_key"`
			Unreadable int64            `json:"unreadable"`
			Error      string           `json:"error"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("reencrypt --json: %v\n%s", err, out)
	}
	t.Logf("reencrypt: %s", bytes.TrimSpace([]byte(out)))
	if len(rep.Nodes) != len(oneRegion) {
		t.Fatalf("reencrypt reported %d nodes, want %d", len(rep.Nodes), len(oneRegion))
	}
	// Every node holds both canaries under k1 (east-3 got the hinted one
	// before the rotation) and the last write under k2.
	for _, n := range rep.Nodes {
		if n.Error != "" || n.Unreadable != 0 || n.ActiveKey != "k2" || n.Current != 1 || n.Rewritten != 2 || n.ByKey["k1"] != 2 {
			t.Errorf("reencrypt of %s: %+v; want 2 rewritten from k1, 1 current", n.Node, n)
		}
	}

	pc.run("keys", "remove", "--file", keyFile, "--id", "k1")
	for _, id := range oneRegion {
		pc.kill(id)
	}
	pc.startAll(oneRegion)
	for key, value := range canaries {
		if err := pc.checkReplicas(key, value, len(oneRegion)); err != nil {
			t.Error(err)
		}
	}
}

// loggedReload reports whether node id logged that it reloaded its
// encryption keys with active key active.
func (pc *procCluster) loggedReload(id, active string) error {
	b, err := os.ReadFile(filepath.Join(pc.dir, id+".log"))
	if err != nil {
		return err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		var rec struct {
			Msg    string `json:"msg"`
			Active string `json:"active"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "encryption keys reloaded" && rec.Active == active {
			return nil
		}
	}
	return fmt.Errorf("%s has not logged reloading its encryption keys with %s active", id, active)
}

// newProcClusterFrom is newProcCluster with an already built binary.
func newProcClusterFrom(t *testing.T, bin string, args ...string) *procCluster {
	t.Helper()
	pc := &procCluster{t: t, bin: bin, dir: t.TempDir(), procs: map[string]*exec.Cmd{}}
	pc.run(append([]string{"dev", "--config-only", "--dir", pc.dir, "--base-port", portBlock()}, args...)...)
	t.Cleanup(func() {
		for _, p := range pc.procs {
			p.Process.Kill()
			p.Wait()
		}
	})
	return pc
}

// writeCanaries starts the region, writes one random value while every
// node is up and one while east-3 is down (a hint keeps it), then stops
// the nodes gracefully. It returns key → value.
func (pc *procCluster) writeCanaries() map[string]string {
	pc.t.Helper()
	pc.startAll(oneRegion)
	canary := func() string {
		b := make([]byte, 16)
		rand.Read(b)
		return "canary-" + hex.EncodeToString(b)
	}
	out := map[string]string{"key-all-up": canary(), "key-hinted": canary()}
	pc.run("put", "key-all-up", out["key-all-up"], "--consistency", "ALL")
	pc.kill("east-3")
	pc.run("put", "key-hinted", out["key-hinted"], "--consistency", "LOCAL_QUORUM")
	pc.waitStatus("a hint for east-3", 10*time.Second, func(st statusJSON) bool {
		for _, s := range st.Nodes {
			if s.HintsPending > 0 {
				return true
			}
		}
		return false
	})
	pc.stopGracefully("east-1", "east-2")
	return out
}

// stopGracefully sends SIGTERM to the nodes ids, all at once, and waits
// for them to exit.
func (pc *procCluster) stopGracefully(ids ...string) {
	pc.t.Helper()
	for _, id := range ids {
		if err := pc.procs[id].Process.Signal(syscall.SIGTERM); err != nil {
			pc.t.Fatal(err)
		}
	}
	for _, id := range ids {
		if err := pc.procs[id].Wait(); err != nil {
			pc.t.Errorf("%s did not stop cleanly: %v", id, err)
		}
		delete(pc.procs, id)
	}
}

func (pc *procCluster) dataDir() string { return filepath.Join(pc.dir, "data") }

// filesHolding lists the files under the data directories that contain b.
func (pc *procCluster) filesHolding(b []byte) []string {
	pc.t.Helper()
	var found []string
	err := filepath.WalkDir(pc.dataDir(), func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, b) {
			rel, _ := filepath.Rel(pc.dataDir(), path)
			found = append(found, rel)
		}
		return nil
	})
	if err != nil {
		pc.t.Fatal(err)
	}
	return found
}

// checkReplicas asks meridian inspect whether key has the given number of
// replicas and every one holds exactly value.
func (pc *procCluster) checkReplicas(key, value string, replicas int) error {
	var res struct {
		Replicas []struct {
			Node   string   `json:"node"`
			Values []string `json:"values"`
			Error  string   `json:"error"`
		} `json:"replicas"`
	}
	out, err := pc.try("inspect", key, "--json")
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return err
	}
	if len(res.Replicas) != replicas {
		return fmt.Errorf("inspect %s: %d replicas, want %d", key, len(res.Replicas), replicas)
	}
	var errs []error
	for _, r := range res.Replicas {
		if r.Error != "" || len(r.Values) != 1 || r.Values[0] != value {
			errs = append(errs, fmt.Errorf("key %s on %s: values %q error %q", key, r.Node, r.Values, r.Error))
		}
	}
	return errors.Join(errs...)
}

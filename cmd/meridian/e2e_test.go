package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/meridian-kv/meridian/node"
)

// procCluster runs meridian nodes as separate processes of the real binary,
// configured by meridian dev --config-only.
type procCluster struct {
	t     *testing.T
	bin   string
	dir   string
	procs map[string]*exec.Cmd
}

// buildBinary builds the meridian binary once per test run (linking it
// takes seconds) and returns its path; it is removed when the run ends.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "meridian-test-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "meridian")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestMain removes the binary buildBinary built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// portBlock returns the first port of a block of 100 for one cluster of
// this test run. The blocks lie below the kernel's ephemeral range (32768
// and up on Linux), so no other program's outgoing connection takes one,
// and no port is found free and released before a node binds it. Tests of
// this package run one at a time; a block holds 25 nodes' QUIC, gossip,
// admin and HTTP gateway ports.
func portBlock() string {
	const first, blocks = 20000, 120
	return strconv.Itoa(first + 100*int((portBlocks.Add(1)-1)%blocks))
}

var portBlocks atomic.Int64

func newProcCluster(t *testing.T, args ...string) *procCluster {
	t.Helper()
	pc := &procCluster{t: t, bin: buildBinary(t), dir: t.TempDir(), procs: map[string]*exec.Cmd{}}
	pc.run(append([]string{"dev", "--config-only", "--dir", pc.dir, "--base-port", portBlock()}, args...)...)
	t.Cleanup(func() {
		for _, p := range pc.procs {
			p.Process.Kill()
			p.Wait()
		}
	})
	return pc
}

// run runs one CLI command against the cluster and returns its stdout.
func (pc *procCluster) run(args ...string) string {
	pc.t.Helper()
	out, err := pc.try(args...)
	if err != nil {
		pc.t.Fatalf("meridian %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (pc *procCluster) try(args ...string) (string, error) {
	cmd := exec.Command(pc.bin, append([]string{"--config", filepath.Join(pc.dir, "client.yaml")}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return stdout.String(), nil
}

func (pc *procCluster) start(id string) {
	pc.t.Helper()
	logf, err := os.OpenFile(filepath.Join(pc.dir, id+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		pc.t.Fatal(err)
	}
	cmd := exec.Command(pc.bin, "node", "--config", filepath.Join(pc.dir, "nodes", id+".yaml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		pc.t.Fatal(err)
	}
	pc.procs[id] = cmd
}

func (pc *procCluster) kill(id string) {
	pc.t.Helper()
	p := pc.procs[id]
	if err := p.Process.Signal(syscall.SIGKILL); err != nil {
		pc.t.Fatal(err)
	}
	p.Wait()
	delete(pc.procs, id)
}

type statusJSON struct {
	Node  string `json:"node"`
	Nodes []struct {
		ID           string `json:"id"`
		DC           string `json:"dc"`
		State        string `json:"state"`
		HintsPending int    `json:"hints_pending"`
	} `json:"nodes"`
}

// waitStatus polls meridian status until cond accepts it.
func (pc *procCluster) waitStatus(what string, timeout time.Duration, cond func(statusJSON) bool) statusJSON {
	pc.t.Helper()
	return pc.waitStatusOf("", what, timeout, cond)
}

// twoRegions are the nodes of `dev --config-only --regions east,west`.
var twoRegions = []string{"east-1", "east-2", "east-3", "west-1", "west-2", "west-3"}

// startAll starts the nodes ids and waits until each sees every other up.
func (pc *procCluster) startAll(ids []string) {
	pc.t.Helper()
	for _, id := range ids {
		pc.start(id)
	}
	pc.waitAllSeeAll(ids)
}

// waitAllSeeAll waits until every node of ids sees all of them up: a
// coordinator with a partial view would leave replicas out of its writes.
func (pc *procCluster) waitAllSeeAll(ids []string) {
	pc.t.Helper()
	for _, id := range ids {
		pc.waitStatusOf(id, "all nodes up as "+id+" sees them", 30*time.Second, allUp(len(ids)))
	}
}

// waitStatusOf is waitStatus asking node id ("" = any).
func (pc *procCluster) waitStatusOf(id, what string, timeout time.Duration, cond func(statusJSON) bool) statusJSON {
	pc.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	args := []string{"status", "--json"}
	if id != "" {
		args = append(args, "--node", id)
	}
	for time.Now().Before(deadline) {
		out, err := pc.try(args...)
		if err == nil {
			var st statusJSON
			if json.Unmarshal([]byte(out), &st) == nil && cond(st) {
				return st
			}
			last = out
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	pc.t.Fatalf("timed out waiting for %s; last status:\n%s", what, last)
	return statusJSON{}
}

func allUp(n int) func(statusJSON) bool {
	return func(st statusJSON) bool {
		up := 0
		for _, s := range st.Nodes {
			if s.State == "up" {
				up++
			}
		}
		return up == n
	}
}

func noHints(st statusJSON) bool {
	for _, s := range st.Nodes {
		if s.State != "up" || s.HintsPending != 0 {
			return false
		}
	}
	return true
}

// TestProcessesSurviveNodeAndRegionLoss is the failover drill of the
// handoff issue, on real processes: 2 regions × 3 nodes; one node killed
// with SIGKILL, then a whole region; every LOCAL_QUORUM write through the
// CLI must succeed; after restarts, inspect must show every replica of
// every key holding its acknowledged value — through hinted handoff, with
// no repair.
func TestProcessesSurviveNodeAndRegionLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six node processes; skipped in -short")
	}
	pc := newProcCluster(t, "--regions", "east,west", "--wan-latency", "5ms")
	ids := twoRegions
	pc.startAll(ids)

	var keys []string
	put := func(phase string, n int) {
		for i := range n {
			key := fmt.Sprintf("%s-%d", phase, i)
			if _, err := pc.try("put", key, "v-"+key, "--consistency", "LOCAL_QUORUM"); err != nil {
				t.Fatalf("LOCAL_QUORUM put %s during %s failed: %v", key, phase, err)
			}
			keys = append(keys, key)
		}
	}
	put("healthy", 5)
	// Before the first fault, let the healthy writes reach every replica
	// (a LOCAL_QUORUM write whose coordinator dies before its remote copies
	// left is delivered from its write-ahead hints once the coordinator
	// restarts; TestProcessesCoordinatorCrashAfterAck checks that).
	for _, key := range keys {
		waitFor(t, 10*time.Second, func() error { return pc.checkEverywhere(key) })
	}

	pc.kill("east-3")
	put("node-killed", 15)

	for _, id := range []string{"west-1", "west-2", "west-3"} {
		pc.kill(id)
	}
	put("region-killed", 15)

	st := pc.waitStatus("hints for the dead nodes", 10*time.Second, func(st statusJSON) bool {
		pending := 0
		for _, s := range st.Nodes {
			if s.HintsPending > 0 {
				pending += s.HintsPending
			}
		}
		return pending > 0
	})
	t.Logf("before restart: %+v", st.Nodes)

	restart := time.Now()
	for _, id := range []string{"east-3", "west-1", "west-2", "west-3"} {
		pc.start(id)
	}
	pc.waitStatus("every node up with no hints pending", 60*time.Second, noHints)
	t.Logf("%d keys; restart to all hints delivered: %v", len(keys), time.Since(restart).Round(10*time.Millisecond))

	for _, key := range keys {
		if err := pc.checkEverywhere(key); err != nil {
			t.Error(err)
		}
	}
	pc.checkMetrics("east-1", "east-2")
}

// checkMetrics scrapes the admin endpoints of the nodes that coordinated
// the drill's writes, parses them as Prometheus text, and checks the
// request histograms and the hint counters are there with their labels.
func (pc *procCluster) checkMetrics(ids ...string) {
	pc.t.Helper()
	stored, delivered := 0.0, 0.0
	for _, id := range ids {
		cfg, families := pc.metrics(id)
		hist := families["meridian_request_duration_seconds"]
		if hist == nil || hist.GetType() != dto.MetricType_HISTOGRAM {
			pc.t.Fatalf("%s: no meridian_request_duration_seconds histogram", id)
		}
		for _, m := range hist.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["db_operation_name"] == "" || labels["meridian_dc"] != "east" {
				pc.t.Errorf("%s: request histogram labels %v", id, labels)
			}
		}
		for name, sum := range map[string]*float64{"meridian_hints_stored_total": &stored, "meridian_hints_delivered_total": &delivered} {
			for _, m := range families[name].GetMetric() {
				*sum += m.GetCounter().GetValue()
			}
		}
		// The node read back what it had written: the row cache answered.
		hits, size := families["meridian_store_row_cache_hits_total"], families["meridian_store_row_cache_size_bytes"]
		if hits == nil || len(hits.GetMetric()) != 1 || hits.GetMetric()[0].GetCounter().GetValue() == 0 {
			pc.t.Errorf("%s: meridian_store_row_cache_hits_total missing or 0: %v", id, hits)
		}
		if size == nil || len(size.GetMetric()) != 1 || size.GetMetric()[0].GetGauge().GetValue() <= 0 {
			pc.t.Errorf("%s: meridian_store_row_cache_size_bytes missing or 0: %v", id, size)
		}
		if resp, err := http.Get("http://" + cfg.Admin + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
			pc.t.Errorf("%s /healthz: %v %v", id, resp, err)
		}
	}
	if stored == 0 || delivered == 0 {
		pc.t.Errorf("hint counters: stored %v, delivered %v; the drill stored and delivered hints", stored, delivered)
	}
	pc.t.Logf("metrics of %v: hints stored %v, delivered %v", ids, stored, delivered)
}

// waitNoBackgroundWork waits until no request answered by one of ids
// still has work running there (meridian_requests_background): every
// write's copies have landed or given up.
func (pc *procCluster) waitNoBackgroundWork(ids []string) {
	pc.t.Helper()
	waitFor(pc.t, 2*node.DefaultRequestTimeout+30*time.Second, func() error {
		for _, id := range ids {
			_, families := pc.metrics(id)
			f := families["meridian_requests_background"]
			if f == nil || len(f.GetMetric()) != 1 {
				return fmt.Errorf("%s /metrics has no meridian_requests_background", id)
			}
			if v := f.GetMetric()[0].GetGauge().GetValue(); v != 0 {
				return fmt.Errorf("%s has %v requests still at work", id, v)
			}
		}
		return nil
	})
}

// without returns ids less drop.
func without(ids []string, drop ...string) []string {
	return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return slices.Contains(drop, id) })
}

// metrics scrapes node id's /metrics and parses it as Prometheus text.
func (pc *procCluster) metrics(id string) (*node.Config, map[string]*dto.MetricFamily) {
	pc.t.Helper()
	cfg, err := node.LoadConfig(filepath.Join(pc.dir, "nodes", id+".yaml"))
	if err != nil {
		pc.t.Fatal(err)
	}
	resp, err := http.Get("http://" + cfg.Admin + "/metrics")
	if err != nil {
		pc.t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		pc.t.Fatalf("%s /metrics is not valid Prometheus text: %v", id, err)
	}
	return cfg, families
}

// checkEverywhere asks meridian inspect whether all six replicas of key
// hold exactly its acknowledged value.
func (pc *procCluster) checkEverywhere(key string) error {
	var res struct {
		Replicas []struct {
			Node   string   `json:"node"`
			DC     string   `json:"dc"`
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
	if len(res.Replicas) != 6 {
		return fmt.Errorf("inspect %s: %d replicas, want 6", key, len(res.Replicas))
	}
	var errs []error
	for _, r := range res.Replicas {
		if r.Error != "" || len(r.Values) != 1 || r.Values[0] != "v-"+key {
			errs = append(errs, fmt.Errorf("key %s on %s (%s): values %q error %q", key, r.Node, r.DC, r.Values, r.Error))
		}
	}
	return errors.Join(errs...)
}

// waitFor polls cond until it returns nil or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestProcessesRepairWithoutHints is the repair drill on real processes:
// with hinted handoff disabled, a node killed while keys are written misses
// them; after it restarts, one `meridian repair --now` makes inspect show
// every replica holding every acknowledged value, and reports its bytes.
func TestProcessesRepairWithoutHints(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six node processes; skipped in -short")
	}
	pc := newProcCluster(t, "--regions", "east,west", "--wan-latency", "5ms")
	ids := twoRegions
	for _, id := range ids {
		f, err := os.OpenFile(filepath.Join(pc.dir, "nodes", id+".yaml"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("hints:\n    disabled: true\n"); err != nil {
			t.Fatal(err)
		}
		f.Close()
		pc.start(id)
	}
	pc.waitAllSeeAll(ids)

	pc.kill("west-2")
	var keys []string
	for i := range 15 {
		key := fmt.Sprintf("unhinted-%d", i)
		if _, err := pc.try("put", key, "v-"+key); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		keys = append(keys, key)
	}
	// Every write's fan-out gives up on the dead node at its deadline (the
	// request timeout); only then may it come back, or a late retry could
	// still reach it.
	pc.waitNoBackgroundWork(without(ids, "west-2"))
	pc.start("west-2")
	pc.waitStatus("all nodes up again", 30*time.Second, allUp(6))
	missing := 0
	for _, key := range keys {
		if pc.checkEverywhere(key) != nil {
			missing++
		}
	}
	if missing == 0 {
		t.Fatal("vacuous: the restarted node already holds every write")
	}

	out := pc.run("repair", "--now", "--json", "--node", "east-1")
	var rep struct {
		KeysFixed int64 `json:"keys_fixed"`
		BytesSent int64 `json:"bytes_sent"`
		Done      bool  `json:"done"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("repair --json: %v\n%s", err, out)
	}
	t.Logf("%d of %d keys were missing on west-2; repair: %s", missing, len(keys), out)
	if !rep.Done || rep.KeysFixed == 0 || rep.BytesSent == 0 {
		t.Errorf("repair report %+v", rep)
	}
	for _, key := range keys {
		if err := pc.checkEverywhere(key); err != nil {
			t.Error(err)
		}
	}
	// The node that ran it exports when each pair last completed a full
	// repair, and what repair fixed.
	_, families := pc.metrics("east-1")
	pairs := map[string]bool{}
	for _, m := range families["meridian_repair_last_full_seconds"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if age := time.Since(time.Unix(int64(m.GetGauge().GetValue()), 0)); age < 0 || age > time.Minute {
			t.Errorf("last full repair of %v is %v old", labels, age)
		}
		pairs[labels["meridian_dc"]+"/"+labels["meridian_replica_dc"]] = true
	}
	if !pairs["east/east"] || !pairs["east/west"] || !pairs["west/west"] {
		t.Errorf("meridian_repair_last_full_seconds covers pairs %v, want east/east, east/west, west/west", pairs)
	}
	if families["meridian_repair_keys_fixed_total"] == nil {
		t.Error("no meridian_repair_keys_fixed_total")
	}
	// Bytes sent, by destination region: east-1 talked to both regions'
	// nodes and answered the CLI's requests.
	sent := map[string]float64{}
	for _, m := range families["meridian_wan_sent_bytes_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "meridian_replica_dc" {
				sent[l.GetValue()] += m.GetCounter().GetValue()
			}
		}
	}
	if sent["east"] == 0 || sent["west"] == 0 || sent["client"] == 0 {
		t.Errorf("meridian_wan_sent_bytes_total of east-1 by destination region: %v, want bytes to east, west and client", sent)
	}
}

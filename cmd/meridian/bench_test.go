package main

import (
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestBenchSmoke runs meridian bench for two seconds against the 3 node
// processes it starts and checks the JSON report's structure and that
// operations were counted. It asserts no speed.
func TestBenchSmoke(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "bench.json")
	mdFile := filepath.Join(dir, "bench.md")
	plotFile := filepath.Join(dir, "bench.png")
	cmd := exec.Command(bin, "bench", "--records", "100", "--threads", "4", "--duration", "2s",
		"--workload", "A", "--cpu", "--calibrate", "--calibrate-duration", "200ms",
		"--dir", filepath.Join(dir, "cluster"), "--base-port", portBlock(),
		"--json", jsonFile, "--markdown", mdFile, "--plot", plotFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("meridian bench: %v\n%s", err, out)
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Command     string `json:"command"`
		Machine     string `json:"machine"`
		Calibration []struct {
			Name      string  `json:"name"`
			Threads   int     `json:"threads"`
			OpsPerSec float64 `json:"ops_per_sec"`
		} `json:"calibration"`
		Runs []struct {
			Target      string  `json:"target"`
			Workload    string  `json:"workload"`
			Consistency string  `json:"consistency"`
			Mode        string  `json:"mode"`
			Threads     int     `json:"threads"`
			Ops         int64   `json:"ops"`
			Errors      int64   `json:"errors"`
			OpsPerSec   float64 `json:"ops_per_sec"`
			PerOp       []struct {
				Op    string  `json:"op"`
				Count int64   `json:"count"`
				P50   float64 `json:"p50_ms"`
				P99   float64 `json:"p99_ms"`
				P999  float64 `json:"p999_ms"`
			} `json:"per_op"`
			CPU *struct {
				Processes int     `json:"processes"`
				Seconds   float64 `json:"seconds"`
			} `json:"cpu"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report is not the expected JSON: %v\n%s", err, b)
	}
	if len(rep.Runs) != 1 {
		t.Fatalf("%d runs in the report, want 1:\n%s", len(rep.Runs), b)
	}
	run := rep.Runs[0]
	if run.Target != "meridian" || run.Workload != "A" || run.Consistency != "LOCAL_QUORUM" || run.Mode != "closed" || run.Threads != 4 {
		t.Errorf("run described as %+v", run)
	}
	if run.Ops-run.Errors <= 0 || run.OpsPerSec <= 0 {
		t.Errorf("no successful operations counted: ops %d, errors %d", run.Ops, run.Errors)
	}
	ops := map[string]int64{}
	var sum int64
	for _, o := range run.PerOp {
		ops[o.Op] = o.Count
		sum += o.Count
		if o.Count > 0 && (o.P50 <= 0 || o.P99 < o.P50 || o.P999 < o.P99) {
			t.Errorf("%s: percentiles p50 %v p99 %v p99.9 %v are not ordered", o.Op, o.P50, o.P99, o.P999)
		}
	}
	if len(ops) != 2 || ops["read"] == 0 || ops["update"] == 0 || sum != run.Ops {
		t.Errorf("per-operation counts %v (sum %d, run %d), want reads and updates adding up", ops, sum, run.Ops)
	}
	if run.CPU == nil || run.CPU.Processes != 3 || run.CPU.Seconds <= 0 {
		t.Errorf("CPU of the node processes: %+v, want 3 processes with some CPU time", run.CPU)
	}
	names := map[string]bool{}
	for _, c := range rep.Calibration {
		names[c.Name] = c.OpsPerSec > 0 && c.Threads == 4
	}
	if !names["pebble-sync"] || !names["quic-rr"] {
		t.Errorf("calibration %+v, want pebble-sync and quic-rr at 4 threads with operations counted", rep.Calibration)
	}
	md, err := os.ReadFile(mdFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| meridian | A | uniform | LOCAL_QUORUM | 4 threads |") {
		t.Errorf("markdown report lacks the run's row:\n%s", md)
	}
	f, err := os.Open(plotFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.DecodeConfig(f); err != nil {
		t.Errorf("--plot wrote no PNG: %v", err)
	}
}

// TestBenchAgainstEtcdOverTLS starts a 3-member etcd over TLS with
// deploy/etcd/start.sh --tls (Debian's etcd-server and openssl) and drives
// it with meridian bench using the flags the script prints; without the
// client certificate the bench says what is missing. It asserts no speed.
func TestBenchAgainstEtcdOverTLS(t *testing.T) {
	for _, tool := range []string{"etcd", "openssl", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install etcd-server openssl curl): the bench's etcd peer cannot be started", tool)
		}
	}
	bin := buildBinary(t)
	script, err := filepath.Abs("../../deploy/etcd/start.sh")
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "MERIDIAN_ETCD_DIR="+filepath.Join(t.TempDir(), "etcd"), "MERIDIAN_ETCD_PORT="+portBlock())
	sh := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("start.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := sh("--tls")
	t.Cleanup(func() { sh("stop") })
	var flags []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "--endpoints" {
			flags = f
		}
	}
	if len(flags) != 10 || !strings.HasPrefix(flags[1], "https://127.0.0.1:") {
		t.Fatalf("start.sh --tls printed no https endpoints and TLS flags:\n%s", out)
	}
	jsonFile := filepath.Join(t.TempDir(), "bench.json")
	bench := append([]string{"bench", "--target", "etcd", "--records", "50", "--threads", "2", "--duration", "1s", "--cpu", "--json", jsonFile}, flags...)
	if out, err := exec.Command(bin, bench...).CombinedOutput(); err != nil {
		t.Fatalf("meridian %s: %v\n%s", strings.Join(bench, " "), err, out)
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Setup string `json:"setup"`
		Runs  []struct {
			Target string `json:"target"`
			Ops    int64  `json:"ops"`
			Errors int64  `json:"errors"`
			CPU    *struct {
				Processes int `json:"processes"`
			} `json:"cpu"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report is not the expected JSON: %v\n%s", err, b)
	}
	if len(rep.Runs) != 1 || rep.Runs[0].Target != "etcd" || rep.Runs[0].Ops == 0 || rep.Runs[0].Errors != 0 {
		t.Fatalf("runs %+v, want one etcd run with operations and no errors", rep.Runs)
	}
	if c := rep.Runs[0].CPU; c == nil || c.Processes != 3 {
		t.Errorf("CPU of the etcd members: %+v, want 3 processes", c)
	}
	if !strings.Contains(rep.Setup, "over TLS") {
		t.Errorf("setup %q does not say etcd ran over TLS", rep.Setup)
	}

	// The CA alone: the members refuse the handshake, and bench says why.
	noCert := append([]string{"bench", "--target", "etcd", "--records", "10", "--threads", "1", "--duration", "1s"}, flags[:2]...)
	noCert = append(noCert, flags[4:6]...) // --etcd-cacert FILE
	out2, err := exec.Command(bin, noCert...).CombinedOutput()
	if err == nil || !strings.Contains(string(out2), "give --etcd-cert and --etcd-key") {
		t.Errorf("bench without a client certificate: %v\n%s", err, out2)
	}
	// https without the CA is refused before anything runs.
	out3, err := exec.Command(bin, "bench", "--target", "etcd", flags[0], flags[1]).CombinedOutput()
	if err == nil || !strings.Contains(string(out3), "give --etcd-cacert") {
		t.Errorf("bench of https endpoints without a CA: %v\n%s", err, out3)
	}
}

// TestContextMap: the load generator's per-key causal contexts, read and
// replaced by many workers, with no allocation for a key it holds.
func TestContextMap(t *testing.T) {
	d := newMeridianDriver(nil)
	key := []byte("user17")
	if got := d.context(key); got != "" {
		t.Fatalf("context of an unseen key = %q, want none", got)
	}
	d.contexts.store(key, "a")
	d.contexts.store([]byte("user18"), "b")
	d.contexts.store(key, "c")
	if got := d.context(key); got != "c" {
		t.Fatalf("context = %q, want the newest, c", got)
	}
	if got := d.context([]byte("user18")); got != "b" {
		t.Fatalf("context of user18 = %q, want b", got)
	}
	if n := testing.AllocsPerRun(100, func() { d.contexts.store(key, "d") }); n != 0 {
		t.Errorf("replacing a held key's context allocated %v times, want 0", n)
	}

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := fmt.Appendf(nil, "user%d", i)
				d.contexts.store(k, fmt.Sprint(w))
				d.context(k)
			}
		})
	}
	wg.Wait()
	for i := range 200 {
		if got := d.context(fmt.Appendf(nil, "user%d", i)); got == "" {
			t.Fatalf("user%d lost its context", i)
		}
	}
}

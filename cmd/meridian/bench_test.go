package main

import (
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

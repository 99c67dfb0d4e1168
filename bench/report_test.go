package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestReportMarkdownAndJSON(t *testing.T) {
	r := &Report{
		Command: "meridian bench", Machine: "test",
		Calibration: []Ceiling{{Name: "pebble-sync", Description: "Pebble", Threads: 16, OpsPerSec: 20000}},
		Runs: []*Result{{
			Target: "meridian", Workload: "A", Distribution: "uniform", Consistency: "LOCAL_QUORUM",
			Mode: ModeClosed, Threads: 16, OpsPerSec: 5000, Ops: 10000,
			PerOp: []OpResult{{Op: "read", Consistency: "LOCAL_QUORUM", Count: 5000, OpsPerSec: 2500, P50Ms: 1.5}},
		}},
	}
	var md bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| meridian | A | uniform | LOCAL_QUORUM | 16 threads | 5000 | read | 2500 | 1.50 |", "| 25.0 % |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Runs) != 1 || back.Runs[0].PerOp[0].P50Ms != 1.5 {
		t.Errorf("JSON round trip: %v, %+v", err, back)
	}
}

func TestRatiosPairRunsAtTheSamePoint(t *testing.T) {
	run := func(target, level string, threads int, ops float64) *Result {
		return &Result{Target: target, Consistency: level, Mode: ModeClosed, Threads: threads, OpsPerSec: ops}
	}
	runs := []*Result{
		run("meridian", "ONE", 16, 300), run("etcd", "ONE", 16, 100),
		run("meridian", "ONE", 64, 500), run("etcd", "LOCAL_QUORUM", 64, 50),
	}
	got := Ratios(runs, "meridian", "etcd")
	if len(got) != 1 || got[0].Throughput != 3 || got[0].Point != "ONE, 16 threads" {
		t.Errorf("Ratios = %+v, want one ratio of 3 at ONE, 16 threads", got)
	}
}

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/meridian-kv/meridian/node"
)

// meridian drill --driver process against three regions of node
// processes: it kills the west nodes by their pid files, reads their
// stores offline for the RPO, restarts them detached, and reports nothing
// acknowledged lost, convergence and a safe fail-back.
func TestProcessesDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six node processes; skipped in -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the process driver finds a node's binary and arguments in /proc (Linux only)")
	}
	pc := newProcCluster(t, "--regions", "east,west,south", "--nodes-per-region", "2", "--wan-latency", "20ms")
	ids := []string{"east-1", "east-2", "west-1", "west-2", "south-1", "south-2"}
	pc.startAll(ids)
	// The driver restarts the west nodes detached, outside pc.procs: stop
	// whatever the pid files name when the test ends.
	t.Cleanup(func() {
		for _, id := range []string{"west-1", "west-2"} {
			cfg, err := node.LoadConfig(filepath.Join(pc.dir, "nodes", id+".yaml"))
			if err != nil {
				continue
			}
			if pid, err := readPidFile(filepath.Join(cfg.DataDir, PidFileName)); err == nil {
				if _, tracked := pc.procs[id]; !tracked || pc.procs[id].Process.Pid != pid {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	})
	report := filepath.Join(pc.dir, "drill.json")
	out, err := pc.try("drill", "--region", "west", "--driver", "process", "--down", "6s", "--baseline", "4s",
		"--rate", "60", "--workers", "2", "--keys", "100", "--converge-timeout", "90s", "--json", report)
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Acked          int    `json:"acked"`
		AckedLost      int    `json:"acked_lost"`
		Resurrected    int    `json:"resurrected"`
		RPOWrites      int    `json:"rpo_writes"`
		RPOChecked     int    `json:"rpo_checked"`
		SafeToFailBack bool   `json:"safe_to_fail_back"`
		FailBack       string `json:"fail_back"`
		Outage         struct {
			Ops int `json:"ops"`
		} `json:"outage"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", got)
	if got.Acked == 0 || got.Outage.Ops == 0 || got.RPOChecked == 0 {
		t.Fatalf("the drill proved nothing: %s", b)
	}
	if got.AckedLost != 0 || got.Resurrected != 0 {
		t.Fatalf("lost %d acknowledged writes, resurrected %d:\n%s", got.AckedLost, got.Resurrected, out)
	}
	if !got.SafeToFailBack {
		t.Fatalf("not safe to fail back: %s", got.FailBack)
	}
	// The restarted nodes run again, each named by its pid file.
	for _, id := range []string{"west-1", "west-2"} {
		cfg, err := node.LoadConfig(filepath.Join(pc.dir, "nodes", id+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		pid, err := readPidFile(filepath.Join(cfg.DataDir, PidFileName))
		if err != nil || syscall.Kill(pid, 0) != nil {
			t.Fatalf("%s is not running again after the drill: pid %d, %v", id, pid, err)
		}
	}
}

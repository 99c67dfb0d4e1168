package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/node"
)

// meridian node names itself in DATA_DIR/meridian.pid while it runs and
// removes the file when it stops cleanly.
func TestNodeWritesPidFile(t *testing.T) {
	pc := newProcCluster(t, "--regions", "east", "--nodes-per-region", "1")
	pc.start("east-1")
	cfg, err := node.LoadConfig(filepath.Join(pc.dir, "nodes", "east-1.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.DataDir, PidFileName)
	want := pc.procs["east-1"].Process.Pid
	waitFor(t, 30*time.Second, func() error {
		pid, err := readPidFile(path)
		if err != nil {
			return err
		}
		if pid != want {
			return fmt.Errorf("pid file holds %d, want %d", pid, want)
		}
		return nil
	})
	p := pc.procs["east-1"]
	if err := p.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("node exited: %v", err)
	}
	delete(pc.procs, "east-1")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("pid file after a clean stop: %v", err)
	}
}

package node

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// startSolo starts a one-node cluster on an in-memory filesystem, bound to
// ports the system picks. (Package devcluster writes whole clusters, but it
// imports node, so this package's internal tests make their own node.)
func startSolo(t *testing.T, tweak ...func(*Config)) *Node {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	ca, err := CreateCA(dir, "solo CA", now, time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	tlsFiles, err := WriteNodeCert(ca, dir, "solo-1", "solo", []string{"127.0.0.1"}, now, time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	c := Config{
		ID: "solo-1", DC: "solo", Listen: "127.0.0.1:0", Gossip: "127.0.0.1:0",
		GossipKeys: []string{base64.StdEncoding.EncodeToString(make([]byte, 32))}, GossipProfile: "lan",
		DataDir: filepath.Join(dir, "data"), TLS: tlsFiles,
		Keyspaces: map[string]Keyspace{"default": {Replication: map[string]int{"solo": 1}}},
	}
	for _, f := range tweak {
		f(&c)
	}
	n, err := Start(c, Options{FS: vfs.NewMem(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// waitingIn counts the goroutines whose stack contains fn and that are
// blocked in a select: waiting, not running or on their way out. (A
// goroutine past its WaitGroup's Done still shows in a stack dump for a
// moment while it returns; on a loaded machine a count of every goroutine
// in fn saw it after Close.)
func waitingIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		k := runtime.Stack(buf, true)
		if k < len(buf) {
			buf = buf[:k]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) && strings.Contains(strings.SplitN(g, "\n", 2)[0], " [select") {
			count++
		}
	}
	return count
}

// TestScanIdleEndsOnClose: the wait that keeps a CPU slot idle after a
// repair scan ends when the node closes, and Close returns only after it
// has released the slot, so no goroutine of a closed node is left sleeping.
func TestScanIdleEndsOnClose(t *testing.T) {
	n := startSolo(t)
	n.repairer.slots.mu.Lock()
	n.repairer.slots.idleFor = func(time.Duration) time.Duration { return time.Hour }
	n.repairer.slots.mu.Unlock()
	const fn = "node.(*repairSlots).releaseCPU"
	before := waitingIn(fn)
	if err := n.repairer.scanning(context.Background(), func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := len(n.repairer.slots.cpu); got != 1 {
		t.Fatalf("%d CPU slots taken after a scan, want 1: the idle wait holds it", got)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(n.repairer.slots.cpu); got != 0 {
		t.Fatalf("%d CPU slots taken after Close, want 0", got)
	}
	if got := waitingIn(fn); got != before {
		t.Fatalf("%d goroutines still idle a CPU slot after Close, want %d", got, before)
	}
	// A scan after Close releases its slot at once.
	for range repairCPU + 1 {
		n.repairer.scanning(context.Background(), func() error { return nil })
	}
	if got := len(n.repairer.slots.cpu); got != 0 {
		t.Fatalf("%d CPU slots taken after scans of a closed node, want 0", got)
	}
	if got := waitingIn(fn); got != before {
		t.Fatalf("%d goroutines idle a CPU slot after scans of a closed node, want %d", got, before)
	}
}

// TestRepairScanSlotsPerNode: each node has its own CPU slots for repair
// scans, so the nodes of one process do not wait on each other's scans.
func TestRepairScanSlotsPerNode(t *testing.T) {
	a, b := startSolo(t), startSolo(t)
	if a.repairer.slots.cpu == b.repairer.slots.cpu {
		t.Fatal("two nodes share their repair scan slots")
	}
	if cap(a.repairer.slots.cpu) != repairCPU || cap(b.repairer.slots.cpu) != repairCPU {
		t.Fatalf("scan slots %d and %d, want %d each", cap(a.repairer.slots.cpu), cap(b.repairer.slots.cpu), repairCPU)
	}
	// b scans while a holds its only slot.
	hold, held := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.repairer.scanning(context.Background(), func() error { close(held); <-hold; return nil })
	}()
	<-held
	ran := false
	if err := b.repairer.scanning(context.Background(), func() error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("b's scan while a scans: ran %v, %v", ran, err)
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/client"
)

// coordinatorRE finds the coordinator in the CLI's put output.
var coordinatorRE = regexp.MustCompile(`coordinator (\S+),`)

// TestProcessesClientFailsOverWhenHomeRegionDies kills -9 every node of the
// client's home region (the first region of client.yaml's preference, its
// dc), then writes through fresh CLI processes, and through a long-lived
// in-process client that held connections to the dead nodes: every write
// must succeed inside its deadline (3s here) by failing over to the other
// region, and every key must hold exactly one value (no
// write was sent twice). Latencies are logged, not asserted.
func TestProcessesClientFailsOverWhenHomeRegionDies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six node processes; skipped in -short")
	}
	pc := newProcCluster(t, "--regions", "east,west", "--wan-latency", "5ms")
	// A request deadline shorter than dialling the three dead home nodes
	// one after another (3 × the client's 1.5s dial timeout), though ample
	// for reaching the other region: the margin the default 5s deadline
	// leaves is what a loaded machine ate when 2 of 30 writes failed.
	clientFile := filepath.Join(pc.dir, "client.yaml")
	f, err := os.OpenFile(clientFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("timeout: 3s\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg, err := client.LoadConfig(clientFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Timeout != 3*time.Second {
		t.Fatalf("client.yaml timeout %v, want 3s", cfg.Timeout)
	}
	var ids, home []string
	for _, n := range cfg.Nodes {
		ids = append(ids, n.ID)
		if n.DC == cfg.DC {
			home = append(home, n.ID)
		}
	}
	if len(home) == 0 || len(home) == len(ids) {
		t.Fatalf("client.yaml: home region %q has %d of %d nodes; the test needs another region", cfg.DC, len(home), len(ids))
	}
	pc.startAll(ids)

	ctx := context.Background()
	longLived, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer longLived.Close()
	wopts := &client.WriteOptions{Consistency: "LOCAL_QUORUM"}
	// Warm up: the long-lived client holds connections to home nodes.
	for i := range 6 {
		res, err := longLived.Put(ctx, []byte(fmt.Sprintf("warm-%d", i)), []byte("v"), wopts)
		if err != nil {
			t.Fatalf("warm-up put %d: %v", i, err)
		}
		if !slices.Contains(home, res.Coordinator) {
			t.Fatalf("warm-up put %d coordinated by %s, outside the home region %v", i, res.Coordinator, home)
		}
	}

	for _, id := range home {
		pc.kill(id)
	}
	t.Logf("killed the home region %s: %v", cfg.DC, home)

	want := map[string]string{}
	var cliLat, llLat []time.Duration
	llPut := func(i int) {
		key := fmt.Sprintf("long-lived-%d", i)
		start := time.Now()
		res, err := longLived.Put(ctx, []byte(key), []byte("v-"+key), wopts)
		lat := time.Since(start)
		if err != nil {
			t.Fatalf("long-lived client put %s after the home region died: %v", key, err)
		}
		if slices.Contains(home, res.Coordinator) {
			t.Fatalf("put %s coordinated by dead node %s", key, res.Coordinator)
		}
		llLat = append(llLat, lat)
		want[key] = "v-" + key
		t.Logf("long-lived put %s: coordinator %s, %v", key, res.Coordinator, lat.Round(time.Millisecond))
	}
	for i := range 30 {
		key := fmt.Sprintf("cli-%d", i)
		start := time.Now()
		out, err := pc.try("put", key, "v-"+key, "--consistency", "LOCAL_QUORUM")
		lat := time.Since(start)
		if err != nil {
			t.Fatalf("CLI put %d of 30 (%s) after the home region died: %v", i+1, key, err)
		}
		m := coordinatorRE.FindStringSubmatch(out)
		if m == nil || slices.Contains(home, m[1]) {
			t.Fatalf("CLI put %s: coordinator not in another region: %q", key, out)
		}
		cliLat = append(cliLat, lat)
		want[key] = "v-" + key
		t.Logf("CLI put %s: coordinator %s, %v (process included)", key, m[1], lat.Round(time.Millisecond))
		// Interleave the long-lived client from the third CLI write on:
		// each CLI write takes at least 3 hedge delays, so by then the
		// client's connections to the dead nodes have been quiet for more
		// than its verify interval, and it must ping before writing.
		if i >= 2 && i%3 == 2 {
			llPut(i / 3)
		}
	}

	// No write was sent twice: each key holds exactly its one value.
	for key, v := range want {
		res, err := longLived.Get(ctx, []byte(key), &client.ReadOptions{Consistency: "LOCAL_QUORUM"})
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		if len(res.Values) != 1 || string(res.Values[0]) != v {
			var got []string
			for _, b := range res.Values {
				got = append(got, string(b))
			}
			t.Errorf("key %s holds %q, want exactly [%q]", key, got, v)
		}
	}
	// A write that cannot meet its level with a region dead fails, but it
	// is not rolled back: the error says it may have been applied and
	// where it landed.
	out, err := pc.try("put", "each-quorum", "v", "--consistency", "EACH_QUORUM")
	if err == nil {
		t.Fatalf("EACH_QUORUM put with region %s dead succeeded: %s", cfg.DC, out)
	}
	t.Logf("EACH_QUORUM put with %s dead: %v", cfg.DC, err)
	if msg := err.Error(); !strings.Contains(msg, "may have been applied") || !strings.Contains(msg, "stored in west") {
		t.Errorf("the failed EACH_QUORUM write's error does not say it may have been applied, stored in west: %s", msg)
	}

	// A write sent to a node that then goes silent (SIGSTOP: the
	// connection stays open) has an unknown outcome: the long-lived client
	// must report that it may have been applied, and not send it to
	// another node. Its connections to the surviving nodes were just used
	// (one put per node, rotating), so it has no reason to doubt them.
	var others []string
	for _, id := range ids {
		if !slices.Contains(home, id) {
			others = append(others, id)
		}
	}
	for i := range others {
		if _, err := longLived.Put(ctx, []byte(fmt.Sprintf("before-stop-%d", i)), []byte("v"), wopts); err != nil {
			t.Fatalf("put before stopping: %v", err)
		}
	}
	for _, id := range others {
		if err := pc.procs[id].Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	_, err = longLived.Put(ctx, []byte("stopped"), []byte("v-stopped"), wopts)
	for _, id := range others {
		if err := pc.procs[id].Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("put to a stopped node: %v", err)
	if !errors.Is(err, client.ErrOutcomeUnknown) || !strings.Contains(err.Error(), "may have been applied") {
		t.Fatalf("put whose node went silent after taking it: %v, want ErrOutcomeUnknown saying it may have been applied", err)
	}
	waitFor(t, 30*time.Second, func() error {
		res, err := longLived.Get(ctx, []byte("stopped"), &client.ReadOptions{Consistency: "LOCAL_QUORUM"})
		if err != nil {
			return err
		}
		if len(res.Values) > 1 {
			t.Fatalf("the write with an unknown outcome became %d siblings", len(res.Values))
		}
		return nil
	})

	t.Logf("CLI write latency with the home region dead (process start included): %s", latencySummary(cliLat))
	t.Logf("long-lived client write latency with the home region dead: %s", latencySummary(llLat))
}

// latencySummary formats min, median and max of ds.
func latencySummary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	return strings.Join([]string{"n=" + fmt.Sprint(len(s)), "min " + r(s[0]), "median " + r(s[len(s)/2]), "max " + r(s[len(s)-1])}, ", ")
}

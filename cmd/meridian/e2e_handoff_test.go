package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/client"
)

// TestProcessesHealRegionOutageByHints is the region-outage drill of hinted
// handoff on real processes: 2 regions × 3 nodes with a 20 ms WAN; the
// three west nodes are killed with SIGKILL while 1,500 unique keys are
// written in east at LOCAL_QUORUM; after west restarts, hints alone (no
// repair, no read repair: inspect does not repair) must bring every
// acknowledged write to all six replicas. It logs how long that took after
// the restart and the hints delivered per second; the deadline is generous
// and is not the measure.
//
// The outage lasts as long as the writes take. For the full scenario of
// the issue run it with MERIDIAN_E2E_OUTAGE=30s (the outage then lasts at
// least that long); MERIDIAN_E2E_HEAL_DEADLINE raises the deadline of the
// healing (default 45s), e.g. to measure a slow build to the end.
func TestProcessesHealRegionOutageByHints(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six node processes; skipped in -short")
	}
	const keys = 1500
	outage := envDuration(t, "MERIDIAN_E2E_OUTAGE", 0)
	healDeadline := envDuration(t, "MERIDIAN_E2E_HEAL_DEADLINE", 45*time.Second)

	pc := newProcCluster(t, "--regions", "east,west", "--wan-latency", "20ms")
	ids := twoRegions
	west := []string{"west-1", "west-2", "west-3"}
	pc.startAll(ids)
	c := pc.client()

	for _, id := range west {
		pc.kill(id)
	}
	down := time.Now()
	written := pc.writeUnique(c, "outage", keys, 16)
	for time.Since(down) < outage {
		time.Sleep(100 * time.Millisecond)
	}
	// Every acknowledged write's copies for west are hints by now: the
	// fan-out tails finish within the request timeout.
	var pending int
	waitFor(t, 30*time.Second, func() error {
		st, err := c.Status(context.Background())
		if err != nil {
			return err
		}
		pending = 0
		for _, s := range st.Nodes {
			if s.DC == "east" && s.HintsPending > 0 {
				pending += s.HintsPending
			}
		}
		if pending < len(written)*len(west) {
			return fmt.Errorf("east holds %d hints, want at least %d (every write, for each west replica)", pending, len(written)*len(west))
		}
		return nil
	})
	t.Logf("west down %v; %d writes acknowledged; %d hints pending in east", time.Since(down).Round(10*time.Millisecond), len(written), pending)

	restart := time.Now()
	for _, id := range west {
		pc.start(id)
	}
	var last error
	var allUp time.Time // when status first showed all six nodes up
	deadline := restart.Add(healDeadline)
	for {
		st, err := c.Status(context.Background())
		if err == nil {
			if allUp.IsZero() && upCount(st.Nodes) == len(ids) {
				allUp = time.Now()
			}
			last = hintsLeft(st.Nodes)
			if last == nil {
				break
			}
		} else {
			last = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("hints not delivered %v after west restarted: %v", healDeadline, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	healed := time.Since(restart)
	if allUp.IsZero() {
		allUp = time.Now()
	}
	delivery := max(time.Since(allUp), 100*time.Millisecond) // status is polled every 100ms
	t.Logf("west restarted to every hint delivered: %v (%d hints, %.0f hints/s including the restart); all up to every hint delivered: %v (about %.0f hints/s)",
		healed.Round(10*time.Millisecond), pending, float64(pending)/healed.Seconds(), delivery.Round(10*time.Millisecond), float64(pending)/delivery.Seconds())

	// Hints alone made every replica whole.
	missing := pc.checkAllEverywhere(c, written)
	if len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged writes are not on all six replicas after the hints drained, e.g. %v", len(missing), len(written), missing[0])
	}
}

// envDuration reads a duration from the environment, or returns def.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return d
}

// client returns a Go client for the cluster, from its client.yaml.
func (pc *procCluster) client() *client.Client {
	pc.t.Helper()
	cfg, err := client.LoadConfig(filepath.Join(pc.dir, "client.yaml"))
	if err != nil {
		pc.t.Fatal(err)
	}
	c, err := client.Dial(context.Background(), cfg)
	if err != nil {
		pc.t.Fatal(err)
	}
	pc.t.Cleanup(func() { c.Close() })
	return c
}

// writeUnique writes n keys "<prefix>-<i>" with value "v-<key>" at
// LOCAL_QUORUM from workers goroutines, and returns the acknowledged keys.
// Every write must be acknowledged.
func (pc *procCluster) writeUnique(c *client.Client, prefix string, n, workers int) []string {
	pc.t.Helper()
	var next atomic.Int64
	var mu sync.Mutex
	var acked []string
	var errs []error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				key := prefix + "-" + strconv.FormatInt(i, 10)
				_, err := c.Put(context.Background(), []byte(key), []byte("v-"+key), &client.WriteOptions{Consistency: "LOCAL_QUORUM"})
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("put %s: %w", key, err))
				} else {
					acked = append(acked, key)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		pc.t.Fatalf("%d of %d LOCAL_QUORUM writes failed: %v", len(errs), n, errors.Join(errs[:min(len(errs), 5)]...))
	}
	return acked
}

// upCount counts the nodes status shows up.
func upCount(nodes []api.NodeStatus) int {
	up := 0
	for _, s := range nodes {
		if s.State == "up" {
			up++
		}
	}
	return up
}

// hintsLeft says which nodes are not up or still hold hints (nil: none).
func hintsLeft(nodes []api.NodeStatus) error {
	var errs []error
	for _, s := range nodes {
		if s.State != "up" || s.HintsPending != 0 {
			errs = append(errs, fmt.Errorf("%s %s with %d hints", s.ID, s.State, s.HintsPending))
		}
	}
	return errors.Join(errs...)
}

// checkAllEverywhere inspects every key (8 at a time) and returns those
// not held, with exactly their value, by all six replicas.
func (pc *procCluster) checkAllEverywhere(c *client.Client, keys []string) []error {
	var mu sync.Mutex
	var missing []error
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, key := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := checkReplicas(c, key); err != nil {
				mu.Lock()
				missing = append(missing, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return missing
}

// checkReplicas asks every replica of key whether it holds exactly
// "v-<key>".
func checkReplicas(c *client.Client, key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Inspect(ctx, "", []byte(key))
	if err != nil {
		return fmt.Errorf("inspect %s: %w", key, err)
	}
	if len(res.Replicas) != 6 {
		return fmt.Errorf("inspect %s: %d replicas, want 6", key, len(res.Replicas))
	}
	for _, r := range res.Replicas {
		if r.Error != "" || len(r.Values) != 1 || r.Values[0] != "v-"+key {
			return fmt.Errorf("key %s on %s (%s): values %q error %q", key, r.Node, r.DC, r.Values, r.Error)
		}
	}
	return nil
}

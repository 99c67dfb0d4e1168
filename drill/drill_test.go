package drill_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/drill"
	"github.com/meridian-kv/meridian/history"
	"github.com/meridian-kv/meridian/sim"
)

// A short drill with the fence driver against a simulated three-region
// cluster (40 ms between regions): nothing acknowledged is lost or undone,
// LOCAL_QUORUM writes leave a non-zero RPO, the cluster converges and may
// fail back, and the JSON report says so. A sample of keys is then checked
// independently with inspect: every replica holds the same values, among
// them every acknowledged write of the key that no later write saw.
func TestDrillFence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := sim.NewCluster(sim.Options{Seed: 7, Regions: []string{"east", "west", "south"}, NodesPerRegion: 2, Replicas: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.WaitConverged(time.Minute); err != nil {
			t.Fatal(err)
		}
		probe, err := c.Client("east")
		if err != nil {
			t.Fatal(err)
		}
		cfg := &client.Config{DC: "east", Nodes: probe.Nodes(), Keyspace: "default"}
		dial := func(cfg *client.Config) (*client.Client, error) { return c.Dial(*cfg) }
		rep, err := drill.Run(context.Background(), drill.Options{
			Client: cfg, Region: "west", Down: 10 * time.Second, Baseline: 4 * time.Second,
			Rate: 80, WorkersPerRegion: 3, Keys: 100, Dial: dial, Seed: 3,
			ConvergeTimeout: 2 * time.Minute,
		})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := rep.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Acked          int     `json:"acked"`
			AckedLost      int     `json:"acked_lost"`
			Resurrected    int     `json:"resurrected"`
			RPOWrites      int     `json:"rpo_writes"`
			RPOSeconds     float64 `json:"rpo_seconds"`
			Converge       float64 `json:"converge_seconds"`
			SafeToFailBack bool    `json:"safe_to_fail_back"`
			Outage         struct {
				Ops    int     `json:"ops"`
				Errors int     `json:"errors"`
				P99    float64 `json:"p99_ms"`
			} `json:"outage"`
		}
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		t.Logf("report: %+v", got)
		if got.Acked == 0 || got.Outage.Ops == 0 {
			t.Fatalf("nothing acknowledged, or no operation during the outage: %s", buf.String())
		}
		if got.AckedLost != 0 || got.Resurrected != 0 {
			t.Fatalf("lost %d acknowledged writes, resurrected %d: %v", got.AckedLost, got.Resurrected, rep.Findings)
		}
		if got.RPOWrites == 0 || got.RPOSeconds <= 0 {
			t.Fatalf("RPO %d writes, %v s: LOCAL_QUORUM writes with 40 ms between regions leave some behind", got.RPOWrites, got.RPOSeconds)
		}
		if !got.SafeToFailBack || got.Converge <= 0 {
			t.Fatalf("safe to fail back %v after %v s: %s", got.SafeToFailBack, got.Converge, rep.FailBack)
		}

		// The independent check, through a fresh client.
		ops := rep.History
		saw := map[[2]string]bool{}
		for _, op := range ops {
			for _, v := range op.Saw {
				if op.Outcome != history.Fail {
					saw[[2]string{op.Key, v}] = true
				}
			}
		}
		var sample []string
		for _, op := range ops {
			if op.Kind == history.Put && op.Outcome == history.OK && !slices.Contains(sample, op.Key) {
				sample = append(sample, op.Key)
			}
			if len(sample) == 10 {
				break
			}
		}
		checker, err := c.Client("south")
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range sample {
			res, err := checker.Inspect(context.Background(), "default", []byte(key))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Replicas) != 6 {
				t.Fatalf("key %s: %d replicas, want 2 in each of 3 regions", key, len(res.Replicas))
			}
			first := slices.Sorted(slices.Values(res.Replicas[0].Values))
			for _, r := range res.Replicas {
				vals := slices.Sorted(slices.Values(r.Values))
				if r.Error != "" || !slices.Equal(vals, first) {
					t.Fatalf("key %s: replica %s holds %v (%s), %s holds %v", key, r.Node, vals, r.Error, res.Replicas[0].Node, first)
				}
			}
			for _, op := range ops {
				if op.Key == key && op.Kind == history.Put && op.Outcome == history.OK && !saw[[2]string{key, op.Value}] && !slices.Contains(first, op.Value) {
					t.Fatalf("key %s: acknowledged value %s, superseded by no write, is on no replica (they hold %v)", key, op.Value, first)
				}
			}
		}
	})
}

package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/version"
)

// BenchmarkHintDeliveryAcrossWAN measures how fast one node delivers the
// hints it holds for a replica in another region (20 ms each way) once the
// replica is reachable again, from the moment it is restored (so the time
// to notice it is included). It reports hints/s; run it with
// -benchtime=1x (each iteration is a whole outage).
func BenchmarkHintDeliveryAcrossWAN(b *testing.B) {
	const hints, target, holder = 16000, "west-1", "east-1"
	tc := startRealCluster(b, clusterOpts{regions: []string{"east", "west"}, latency: 20 * time.Millisecond})
	h := tc.nodes[holder]
	addr := tc.config(target).Listen
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		tc.em.Isolate(addr)
		for j := range hints {
			key := []byte(fmt.Sprintf("bench-%d-%d", i, j))
			obj := version.New().Update(nil, holder, version.Write{Value: make([]byte, 100), WrittenAt: 1})
			if ok, err := h.Store().AddHint(target, "default", key, obj, nil, time.Now(), store.HintLimits{}); err != nil || !ok {
				b.Fatalf("AddHint: %v %v", ok, err)
			}
		}
		// The holder's next round fails and takes the target out of use.
		waitForLong(b, 30*time.Second, func() error {
			if st := h.PeerState(target); st == node.StateUp {
				return fmt.Errorf("%s still sees %s up", holder, target)
			}
			return nil
		})
		b.StartTimer()
		start := time.Now()
		tc.em.Restore(addr)
		waitForLong(b, 5*time.Minute, func() error {
			if st, ok := h.PendingHints()[target]; ok {
				return fmt.Errorf("%d hints for %s pending", st.Count, target)
			}
			return nil
		})
		b.ReportMetric(float64(hints)/time.Since(start).Seconds(), "hints/s")
	}
}

// waitForLong is waitFor with its own deadline.
func waitForLong(t testing.TB, timeout time.Duration, cond func() error) {
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
		time.Sleep(20 * time.Millisecond)
	}
}

package node_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/store"
)

// TestAckedWriteSurvivesItsCoordinatorsCrash is defect 3 of issue 8: a
// LOCAL_QUORUM write (and a delete) is acknowledged while its copies to
// the other region have not left; the coordinator then loses power (its
// disk is what was synced at the acknowledgement). Restarted from that
// disk, it must bring every write to every replica of both regions with
// no repair: the acknowledgement promised the write was durably queued
// for them.
func TestAckedWriteSurvivesItsCoordinatorsCrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, latency: 20 * time.Millisecond, tracer: tp})
		const coord = "east-1"
		c := tc.dialOnly(coord, client.Config{TracerProvider: tp})

		doomed := []byte("doomed")
		if _, err := c.Put(ctx(t), doomed, []byte("old"), &client.WriteOptions{Consistency: "ALL"}); err != nil {
			t.Fatal(err)
		}
		seen, err := c.Get(ctx(t), doomed, &client.ReadOptions{Consistency: "ALL"})
		if err != nil {
			t.Fatal(err)
		}

		// The copies to west cannot leave: the write is acknowledged with
		// them still in the coordinator's memory, as with a long WAN.
		tc.sim.Net.CutRegions("east", "west", true)
		const n = 5
		var wg sync.WaitGroup
		errs := make(chan error, n+1)
		lq := &client.WriteOptions{Consistency: "LOCAL_QUORUM"}
		for i := range n {
			wg.Go(func() {
				res, err := c.Put(ctx(t), fmt.Appendf(nil, "k-%d", i), fmt.Appendf(nil, "v-%d", i), lq)
				if err == nil && res.Coordinator != coord {
					err = fmt.Errorf("put coordinated by %s, want %s", res.Coordinator, coord)
				}
				errs <- err
			})
		}
		wg.Go(func() {
			_, err := c.Delete(ctx(t), doomed, &client.WriteOptions{Consistency: "LOCAL_QUORUM", Context: seen.Context})
			errs <- err
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		// Power cut the moment the last write was acknowledged: only what was
		// synced survives.
		if err := tc.sim.PowerLoss(coord, 0, nil); err != nil {
			t.Fatal(err)
		}
		tc.sim.Net.Heal()

		var others []string
		for id := range tc.nodes {
			if id != coord {
				others = append(others, id)
			}
		}
		slices.Sort(others)
		missing := func() error {
			var errs []error
			for _, id := range others {
				st := tc.nodes[id].Store()
				for i := range n {
					obj, err := st.Get("default", fmt.Appendf(nil, "k-%d", i))
					if err != nil {
						return err
					}
					if v := obj.Values(); len(v) != 1 || string(v[0]) != fmt.Sprintf("v-%d", i) {
						errs = append(errs, fmt.Errorf("%s holds k-%d = %q", id, i, v))
					}
				}
				obj, err := st.Get("default", doomed)
				if err != nil {
					return err
				}
				if !store.IsTombstone(obj) {
					errs = append(errs, fmt.Errorf("%s holds %q for the deleted key", id, obj.Values()))
				}
			}
			return errors.Join(errs...)
		}
		err = missing()
		if err == nil {
			t.Fatal("vacuous: every replica got every write before the coordinator died")
		}
		t.Logf("when the coordinator died: %v", err)

		if err := tc.start(coord); err != nil {
			t.Fatal(err)
		}
		// Hinted handoff from the restarted coordinator, and nothing else,
		// brings the writes over.
		deadline := time.Now().Add(60 * time.Second)
		for err = missing(); err != nil; err = missing() {
			if time.Now().After(deadline) {
				t.Fatalf("acknowledged writes never reached every replica: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Delivered hints are deleted after the target's ack.
		waitFor(t, func() error {
			if p := tc.nodes[coord].PendingHints(); len(p) > 0 {
				return fmt.Errorf("%s still holds hints %v", coord, p)
			}
			return nil
		})
		// Each delivery's span links to the write that queued the hint, across
		// the crash.
		writes := map[trace.TraceID]bool{}
		for _, s := range rec.Ended() {
			if s.SpanKind() == trace.SpanKindClient && (s.Name() == "put default" || s.Name() == "delete default") {
				writes[s.SpanContext().TraceID()] = true
			}
		}
		waitFor(t, func() error {
			linked := map[string]bool{}
			for _, s := range rec.Ended() {
				target, ok := strings.CutPrefix(s.Name(), "hint.deliver ")
				if !ok {
					continue
				}
				for _, l := range s.Links() {
					if writes[l.SpanContext.TraceID()] {
						linked[target] = true
					}
				}
			}
			for _, id := range []string{"west-1", "west-2", "west-3"} {
				if !linked[id] {
					return fmt.Errorf("no hint delivery to %s links to a write's trace (linked: %v)", id, linked)
				}
			}
			return nil
		})
	})
}

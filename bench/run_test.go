package bench

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// server is a fake target with one server: every operation holds it for
// service (simulated time), so operations beyond 1/service per second
// queue. The channel semaphore keeps waiting goroutines durably blocked
// for synctest.
type server struct {
	service time.Duration
	slot    chan struct{}
	fail    bool
}

func newServer(service time.Duration) *server {
	return &server{service: service, slot: make(chan struct{}, 1)}
}

func (s *server) op(ctx context.Context) error {
	select {
	case s.slot <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	time.Sleep(s.service)
	<-s.slot
	if s.fail {
		return errors.New("refused")
	}
	return nil
}

func (s *server) Read(ctx context.Context, _ []byte, _ string) error               { return s.op(ctx) }
func (s *server) Update(ctx context.Context, _, _ []byte, _ string) error          { return s.op(ctx) }
func (s *server) ReadModifyWrite(ctx context.Context, _, _ []byte, _ string) error { return s.op(ctx) }

func generator(t *testing.T, w Workload) *Generator {
	t.Helper()
	g, err := NewGenerator(Spec{Workload: w, Records: 100, ValueSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// near10 accepts 10 ms within the histogram's three significant digits.
func near10(ms float64) bool { return ms >= 10 && ms <= 10.02 }

func all(res *Result) (count int64, p50, p99 float64) {
	for _, o := range res.PerOp {
		count += o.Count
		p50 = max(p50, o.P50Ms)
		p99 = max(p99, o.P99Ms)
	}
	return
}

// TestOpenLoopCountsQueueingDelay: a target that serves 100 ops/s asked
// for 1000 ops/s for one second completes about 100 operations, and their
// latency, counted from when the schedule meant them to start, grows with
// the queue (operation k waits about 9k ms), although each one took 10 ms
// once sent. Measured from the send, every latency would be 10–40 ms.
func TestOpenLoopCountsQueueingDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		res, err := Run(t.Context(), newServer(10*time.Millisecond), generator(t, WorkloadA),
			RunOptions{Threads: 4, Rate: 1000, Duration: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		count, p50, p99 := all(res)
		if count < 95 || count > 105 {
			t.Errorf("completed %d operations, want about 100 (the target's capacity)", count)
		}
		if p50 < 300 {
			t.Errorf("p50 = %.1f ms: the queueing delay behind the overloaded target is missing", p50)
		}
		if p99 < 800 {
			t.Errorf("p99 = %.1f ms: the queueing delay behind the overloaded target is missing", p99)
		}
		if res.Unfinished < 800 {
			t.Errorf("%d operations never started, want about 900", res.Unfinished)
		}
		if res.Mode != ModeOpen || res.Rate != 1000 {
			t.Errorf("mode %q rate %v, want open at 1000", res.Mode, res.Rate)
		}
	})
}

// TestOpenLoopWithinCapacity: at 50 ops/s the same target keeps up, so
// every latency is its 10 ms service time and nothing queues.
func TestOpenLoopWithinCapacity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		res, err := Run(t.Context(), newServer(10*time.Millisecond), generator(t, WorkloadA),
			RunOptions{Threads: 4, Rate: 50, Duration: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		count, p50, p99 := all(res)
		if count != 50 {
			t.Errorf("completed %d operations, want 50", count)
		}
		if !near10(p50) || !near10(p99) {
			t.Errorf("p50 %.2f ms, p99 %.2f ms; want 10 ms both", p50, p99)
		}
		if res.Unfinished != 0 {
			t.Errorf("%d operations never started", res.Unfinished)
		}
	})
}

// TestClosedLoop: one worker against a 10 ms target for a second does 100
// operations of 10 ms each, split between reads and updates for YCSB-A.
func TestClosedLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		res, err := Run(t.Context(), newServer(10*time.Millisecond), generator(t, WorkloadA),
			RunOptions{Threads: 1, Duration: time.Second, Consistency: "LOCAL_QUORUM"})
		if err != nil {
			t.Fatal(err)
		}
		count, p50, p99 := all(res)
		if count != 100 || res.Ops != 100 {
			t.Errorf("completed %d operations (result says %d), want 100", count, res.Ops)
		}
		if !near10(p50) || !near10(p99) {
			t.Errorf("p50 %.2f ms, p99 %.2f ms; want 10 ms both", p50, p99)
		}
		if len(res.PerOp) != 2 || res.PerOp[0].Op != string(OpRead) || res.PerOp[1].Op != string(OpUpdate) {
			t.Fatalf("per-op results %+v, want read and update", res.PerOp)
		}
		for _, o := range res.PerOp {
			if o.Consistency != "LOCAL_QUORUM" {
				t.Errorf("%s reported at consistency %q", o.Op, o.Consistency)
			}
		}
		if res.OpsPerSec < 99 || res.OpsPerSec > 101 {
			t.Errorf("%.1f ops/s, want 100", res.OpsPerSec)
		}
	})
}

func TestErrorsAreCountedNotThroughput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(10 * time.Millisecond)
		s.fail = true
		res, err := Run(t.Context(), s, generator(t, WorkloadC),
			RunOptions{Threads: 1, Duration: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors != 10 || res.Ops != 10 || res.OpsPerSec != 0 || res.PerOp[0].FirstError != "refused" {
			t.Errorf("ops %d errors %d ops/s %v first error %q; want 10 failed ops, 0 ops/s, \"refused\"",
				res.Ops, res.Errors, res.OpsPerSec, res.PerOp[0].FirstError)
		}
	})
}

func TestPoints(t *testing.T) {
	closed := Points(RunOptions{Duration: time.Second}, []int{16, 64}, nil, []string{"ONE", "LOCAL_QUORUM"})
	if len(closed) != 4 || closed[0].Threads != 16 || closed[1].Threads != 64 || closed[2].Consistency != "LOCAL_QUORUM" || closed[0].Rate != 0 {
		t.Errorf("closed sweep %+v", closed)
	}
	open := Points(RunOptions{}, []int{16, 64}, []float64{500, 1000}, nil)
	if len(open) != 2 || open[0].Rate != 500 || open[1].Rate != 1000 || open[0].Threads != 64 {
		t.Errorf("open sweep %+v", open)
	}
}

// keyCounter counts the writes of each key.
type keyCounter struct {
	mu     sync.Mutex
	writes map[string]int
	failAt string
}

func (k *keyCounter) Read(context.Context, []byte, string) error { return nil }
func (k *keyCounter) Update(_ context.Context, key, _ []byte, _ string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if string(key) == k.failAt {
		return errors.New("disk full")
	}
	k.writes[string(key)]++
	return nil
}
func (k *keyCounter) ReadModifyWrite(context.Context, []byte, []byte, string) error { return nil }

func TestLoadWritesEveryRecordOnce(t *testing.T) {
	k := &keyCounter{writes: map[string]int{}}
	var done atomic.Int64
	if err := Load(t.Context(), k, Spec{Records: 1000, ValueSize: 10}, 8, "ALL", &done); err != nil {
		t.Fatal(err)
	}
	if len(k.writes) != 1000 || done.Load() != 1000 {
		t.Fatalf("%d keys written, %d counted done; want 1000", len(k.writes), done.Load())
	}
	for i := range uint64(1000) {
		if n := k.writes[string(Key(i))]; n != 1 {
			t.Errorf("record %d written %d times", i, n)
		}
	}
	k = &keyCounter{writes: map[string]int{}, failAt: string(Key(500))}
	if err := Load(t.Context(), k, Spec{Records: 1000, ValueSize: 10}, 8, "ALL", nil); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Load with a failing write returned %v, want the write's error", err)
	}
}

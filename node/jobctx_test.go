package node

import (
	"context"
	"testing"
	"time"
)

// Background jobs starting within one slice share a context; each job's
// deadline leaves it at least the request timeout and at most a slice
// more; the node's closing cancels them all.
func TestJobContexts(t *testing.T) {
	parent, stop := context.WithCancel(context.Background())
	defer stop()
	const timeout = time.Hour // nothing expires during the test
	start := time.Now()
	clock := start
	j := newJobContexts(parent, timeout, func() time.Time { return clock })
	slice := j.slice()
	if slice != 50*time.Millisecond {
		t.Fatalf("slice %v for a timeout of %v, want 50ms", slice, timeout)
	}
	if s := newJobContexts(parent, time.Second, time.Now).slice(); s != 50*time.Millisecond {
		t.Fatalf("slice %v for a 1s timeout, want 50ms", s)
	}
	if s := newJobContexts(parent, 200*time.Millisecond, time.Now).slice(); s != 10*time.Millisecond {
		t.Fatalf("slice %v for a 200ms timeout, want 10ms", s)
	}

	check := func(ctx context.Context, startedAt time.Time) {
		t.Helper()
		dl, ok := ctx.Deadline()
		if !ok {
			t.Fatal("a job's context has no deadline")
		}
		if left := dl.Sub(startedAt); left < timeout || left > timeout+slice {
			t.Fatalf("a job started at +%v has %v until its deadline, want between %v and %v", startedAt.Sub(start), left, timeout, timeout+slice)
		}
	}
	first := j.get()
	check(first, clock)
	clock = start.Add(slice - time.Nanosecond)
	if j.get() != first {
		t.Fatal("a job within the slice got a context of its own")
	}
	check(first, clock)
	clock = start.Add(slice)
	second := j.get()
	if second == first {
		t.Fatal("a job after the slice got the previous slice's context")
	}
	check(second, clock)
	if a := testing.AllocsPerRun(100, func() { j.get() }); a != 0 {
		t.Errorf("a job's context allocated %v times within a slice", a)
	}

	stop()
	for _, ctx := range []context.Context{first, second} {
		if ctx.Err() == nil {
			t.Fatal("a job's context outlived the node")
		}
	}
}

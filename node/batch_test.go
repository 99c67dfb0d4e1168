package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/meridian-kv/meridian/wan"
)

// fakeLanes is a batcher whose send records each batch's keys and holds
// it until the test releases it; every item's result is an error naming
// its key and the batch's number.
type fakeLanes struct {
	b       *batcher
	mu      sync.Mutex
	batches [][]string
	release chan struct{}
}

func newFakeLanes() *fakeLanes {
	f := &fakeLanes{release: make(chan struct{})}
	f.b = newBatcher(context.Background(), noop.NewTracerProvider().Tracer(""), func(fn func()) bool { go fn(); return true },
		func(ctx context.Context, peer string, kind batchKind, items []*batchItem) {
			var keys []string
			for _, it := range items {
				keys = append(keys, string(it.key))
			}
			f.mu.Lock()
			f.batches = append(f.batches, keys)
			nb := len(f.batches)
			f.mu.Unlock()
			<-f.release
			deliver(items, func(i int) batchResult {
				return batchResult{err: fmt.Errorf("%s in batch %d", items[i].key, nb)}
			})
		})
	return f
}

func (f *fakeLanes) sent() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches)
}

// submit sends a write of key on peer's lane in a goroutine; its result
// arrives on the returned channel.
func (f *fakeLanes) submit(ctx context.Context, key string, size int) <-chan batchResult {
	ch := make(chan batchResult, 1)
	go func() { ch <- f.b.do("east-2", batchWrites, &batchItem{ctx: ctx, key: []byte(key), size: size}) }()
	return ch
}

// A request that finds its lane idle goes alone at once; the requests that
// arrive while that batch is out leave together as the next batch, and
// each gets its own result.
func TestBatcherCoalescesWhileABatchIsOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeLanes()
		first := f.submit(t.Context(), "a", 10)
		synctest.Wait()
		var rest []<-chan batchResult
		for _, k := range []string{"b", "c", "d"} {
			rest = append(rest, f.submit(t.Context(), k, 10))
			synctest.Wait()
		}
		if got := f.sent(); !slices.EqualFunc(got, [][]string{{"a"}}, slices.Equal) {
			t.Fatalf("batches sent while the first is out: %q, want only [a]", got)
		}
		f.release <- struct{}{}
		if r := <-first; r.err == nil || r.err.Error() != "a in batch 1" {
			t.Fatalf("first request's result: %v", r.err)
		}
		synctest.Wait()
		if got := f.sent(); !slices.EqualFunc(got, [][]string{{"a"}, {"b", "c", "d"}}, slices.Equal) {
			t.Fatalf("batches: %q, want [a] then [b c d]", got)
		}
		f.release <- struct{}{}
		for i, k := range []string{"b", "c", "d"} {
			if r := <-rest[i]; r.err == nil || r.err.Error() != k+" in batch 2" {
				t.Errorf("result of %s: %v", k, r.err)
			}
		}
		// The lane is idle again: the next request goes at once.
		next := f.submit(t.Context(), "e", 10)
		synctest.Wait()
		f.release <- struct{}{}
		if r := <-next; r.err == nil || r.err.Error() != "e in batch 3" {
			t.Fatalf("result after the lane went idle: %v", r.err)
		}
	})
}

// A batch holds at most maxBatchBytes of objects (one larger object still
// goes, alone) and maxBatchItems requests.
func TestBatcherBoundsABatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeLanes()
		var results []<-chan batchResult
		results = append(results, f.submit(t.Context(), "first", 1))
		synctest.Wait()
		for i, size := range []int{maxBatchBytes / 2, maxBatchBytes / 2, 1, maxBatchBytes + 1} {
			results = append(results, f.submit(t.Context(), fmt.Sprintf("big%d", i), size))
			synctest.Wait()
		}
		for i := range maxBatchItems + 1 {
			results = append(results, f.submit(t.Context(), fmt.Sprintf("k%d", i), 1))
			synctest.Wait()
		}
		for range 6 {
			f.release <- struct{}{}
			synctest.Wait()
		}
		for _, r := range results {
			<-r
		}
		got := f.sent()
		sizes := make([]int, len(got))
		for i, b := range got {
			sizes[i] = len(b)
		}
		// [first]; big0+big1 fill the bytes; big2 and big3 go alone once
		// the bytes would pass the bound; then the small ones, 256 at most.
		want := []int{1, 2, 1, 1, maxBatchItems, 1}
		if !slices.Equal(sizes, want) {
			t.Fatalf("batch sizes %v, want %v (batches %q)", sizes, want, got[:min(len(got), 4)])
		}
	})
}

// A request whose context ends while it is queued leaves unsent, with its
// context's error; one whose batch is out when its context ends has an
// unknown outcome, as a single call's would.
func TestBatcherRequestEndsQueuedOrSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeLanes()
		sentCtx, cancelSent := context.WithTimeout(t.Context(), time.Second)
		defer cancelSent()
		sent := f.submit(sentCtx, "sent", 1)
		synctest.Wait()
		queuedCtx, cancelQueued := context.WithCancel(t.Context())
		queued := f.submit(queuedCtx, "queued", 1)
		stays := f.submit(t.Context(), "stays", 1)
		synctest.Wait()
		cancelQueued()
		r := <-queued
		if !errors.Is(r.err, context.Canceled) || errors.Is(r.err, wan.ErrOutcomeUnknown) {
			t.Fatalf("queued request cancelled: %v, want context.Canceled, not an unknown outcome", r.err)
		}
		time.Sleep(2 * time.Second) // the sent request's deadline passes
		r = <-sent
		if !errors.Is(r.err, wan.ErrOutcomeUnknown) || !errors.Is(r.err, context.DeadlineExceeded) {
			t.Fatalf("sent request past its deadline: %v, want an unknown outcome", r.err)
		}
		f.release <- struct{}{}
		synctest.Wait()
		f.release <- struct{}{}
		if r := <-stays; r.err == nil || r.err.Error() != "stays in batch 2" {
			t.Fatalf("request queued behind them: %v", r.err)
		}
		if got := f.sent(); !slices.EqualFunc(got, [][]string{{"sent"}, {"stays"}}, slices.Equal) {
			t.Fatalf("batches %q: the cancelled request must not be sent", got)
		}
	})
}

// A peer that refused a batch gets single calls until batchRetry passes.
func TestBatcherSingleCallsAfterARefusal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBatcher(context.Background(), noop.NewTracerProvider().Tracer(""), nil, nil)
		if b.single("east-2") {
			t.Fatal("a peer gets single calls before any refusal")
		}
		b.refuse("east-2", batchWrites)
		if !b.single("east-2") || b.single("east-3") {
			t.Fatal("after east-2 refused: single calls to east-2 only")
		}
		time.Sleep(batchRetry + time.Second)
		if b.single("east-2") {
			t.Fatal("east-2 still gets single calls after batchRetry")
		}
	})
}

func TestRefusedBatch(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&wan.RemoteError{Code: "bad_request", Message: "meridian: unknown message type 38"}, true},
		{fmt.Errorf("wrapped: %w", &wan.RemoteError{Code: "bad_request", Message: "meridian: unknown message type 38"}), true},
		{&wan.RemoteError{Code: "bad_request", Message: "node: key of 9000 bytes"}, false},
		{&wan.RemoteError{Code: "overloaded", Message: "unknown message type"}, false},
		{errors.New("unknown message type"), false},
		{nil, false},
	} {
		if got := refusedBatch(c.err); got != c.want {
			t.Errorf("refusedBatch(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// RunOptions are one run's parameters. Zero fields mean their defaults.
type RunOptions struct {
	// Threads is the number of workers: in a closed-loop run each issues
	// its next operation when the last returns; in an open-loop run it
	// bounds the operations in flight (scheduled operations wait for a
	// free worker, and that wait counts in their latency). Default 16.
	Threads int
	// Rate, in operations per second, makes the run open-loop: operation
	// i is scheduled at start + i/Rate whatever happened before it. 0
	// means closed-loop.
	Rate float64
	// Duration is how long operations are issued; default 10s.
	Duration time.Duration
	// Consistency is handed to every Driver call.
	Consistency string
	// Seed makes the operations and keys reproducible; worker w draws from
	// a PCG seeded (Seed, w).
	Seed uint64
	// OpTimeout bounds one operation; default 10s.
	OpTimeout time.Duration
	// Done, if set, is incremented after every operation (for a progress
	// display).
	Done *atomic.Int64
}

func (o RunOptions) withDefaults() RunOptions {
	if o.Threads <= 0 {
		o.Threads = 16
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 10 * time.Second
	}
	return o
}

// Run drives d with gen's operations as opts say and returns what it
// measured. It returns an error only when ctx ends the run early; failed
// operations are counted in the result.
func Run(ctx context.Context, d Driver, gen *Generator, opts RunOptions) (*Result, error) {
	opts = opts.withDefaults()
	if opts.Rate < 0 {
		return nil, fmt.Errorf("bench: rate %v is negative", opts.Rate)
	}
	rec := newRecorder()
	start := time.Now()
	end := start.Add(opts.Duration)
	var wg sync.WaitGroup
	if opts.Rate == 0 {
		for w := range opts.Threads {
			wg.Go(func() {
				wk := newWorker(d, gen, opts, rec, w)
				for ctx.Err() == nil && time.Now().Before(end) {
					t0 := time.Now()
					wk.one(ctx, t0)
				}
			})
		}
	} else {
		// The schedule runs ahead of the workers through a queue of
		// intended start times; when the queue is full the scheduler
		// waits, but the times it enqueues stay on the schedule.
		queue := make(chan time.Time, 1<<12)
		wg.Go(func() {
			defer close(queue)
			interval := float64(time.Second) / opts.Rate
			for i := 0; ; i++ {
				at := start.Add(time.Duration(float64(i) * interval))
				if !at.Before(end) {
					return
				}
				if wait := time.Until(at); wait > 0 {
					t := time.NewTimer(wait)
					select {
					case <-t.C:
					case <-ctx.Done():
						t.Stop()
						return
					}
				}
				select {
				case queue <- at:
				case <-ctx.Done():
					return
				}
			}
		})
		for w := range opts.Threads {
			wg.Go(func() {
				wk := newWorker(d, gen, opts, rec, w)
				for at := range queue {
					if ctx.Err() != nil || !time.Now().Before(end) {
						// Scheduled in time but never started: its
						// latency is at least its wait so far.
						rec.neverStarted(time.Since(at))
						continue
					}
					wk.one(ctx, at)
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bench: run stopped early: %w", err)
	}
	spec := gen.Spec()
	res := &Result{
		Workload: string(spec.Workload), Distribution: string(spec.Distribution),
		Records: spec.Records, ValueSize: spec.ValueSize, Consistency: opts.Consistency,
		Mode: ModeClosed, Threads: opts.Threads, Seconds: elapsed.Seconds(),
	}
	if opts.Rate > 0 {
		res.Mode, res.Rate = ModeOpen, opts.Rate
	}
	rec.fill(res)
	return res, nil
}

// worker is one goroutine's state: its random source and value buffer.
type worker struct {
	d     Driver
	gen   *Generator
	opts  RunOptions
	rec   *recorder
	r     *rand.Rand
	value []byte
	n     uint64
}

func newWorker(d Driver, gen *Generator, opts RunOptions, rec *recorder, w int) *worker {
	r := rand.New(rand.NewPCG(opts.Seed, uint64(w)))
	value := make([]byte, gen.Spec().ValueSize)
	for i := range value {
		value[i] = 'a' + byte(r.IntN(26))
	}
	return &worker{d: d, gen: gen, opts: opts, rec: rec, r: r, value: value}
}

// one runs the next operation and records its latency from intended.
func (w *worker) one(ctx context.Context, intended time.Time) {
	op, i := w.gen.Next(w.r)
	key := Key(i)
	w.stamp()
	octx, cancel := context.WithTimeout(ctx, w.opts.OpTimeout)
	var err error
	switch op {
	case OpRead:
		err = w.d.Read(octx, key, w.opts.Consistency)
	case OpUpdate:
		err = w.d.Update(octx, key, w.value, w.opts.Consistency)
	case OpReadModifyWrite:
		err = w.d.ReadModifyWrite(octx, key, w.value, w.opts.Consistency)
	}
	cancel()
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return // the run was stopped, not the operation
	}
	w.rec.record(op, time.Since(intended), err)
	if w.opts.Done != nil {
		w.opts.Done.Add(1)
	}
}

// stamp makes each written value differ from the last one this worker
// wrote, so no target can skip a write as unchanged.
func (w *worker) stamp() {
	w.n++
	for i, n := 0, w.n; i < len(w.value) && i < 8; i, n = i+1, n>>8 {
		w.value[i] = 'a' + byte(n%26)
	}
}

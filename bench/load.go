package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// Load writes every record of spec once (YCSB's load phase), from threads
// workers, and stops at the first failed write, returning its error.
func Load(ctx context.Context, d Driver, spec Spec, threads int, consistency string, done *atomic.Int64) error {
	if threads <= 0 {
		threads = 16
	}
	var next atomic.Uint64
	g, ctx := errgroup.WithContext(ctx)
	for w := range threads {
		g.Go(func() error {
			r := rand.New(rand.NewPCG(0, uint64(w)))
			value := make([]byte, spec.ValueSize)
			for i := range value {
				value[i] = 'a' + byte(r.IntN(26))
			}
			for {
				i := next.Add(1) - 1
				if i >= spec.Records || ctx.Err() != nil {
					return nil
				}
				if err := d.Update(ctx, Key(i), value, consistency); err != nil {
					return fmt.Errorf("bench: loading record %d: %w", i, err)
				}
				if done != nil {
					done.Add(1)
				}
			}
		})
	}
	return g.Wait()
}

// Points expands a sweep into the runs to make, in order: for each
// consistency level, each thread count (closed loop) or, when rates are
// given, each rate (open loop, with the largest thread count bounding the
// operations in flight).
func Points(base RunOptions, threads []int, rates []float64, levels []string) []RunOptions {
	if len(levels) == 0 {
		levels = []string{base.Consistency}
	}
	if len(threads) == 0 {
		threads = []int{base.Threads}
	}
	var out []RunOptions
	for _, lvl := range levels {
		o := base
		o.Consistency = lvl
		if len(rates) > 0 {
			o.Threads = 0
			for _, t := range threads {
				o.Threads = max(o.Threads, t)
			}
			for _, r := range rates {
				o.Rate = r
				out = append(out, o)
			}
			continue
		}
		for _, t := range threads {
			o.Threads, o.Rate = t, 0
			out = append(out, o)
		}
	}
	return out
}

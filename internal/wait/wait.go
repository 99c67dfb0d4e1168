// Package wait holds the one way Meridian sleeps: for a duration, or until
// its context ends, whichever comes first.
package wait

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx ends, and returns ctx's error in that
// case. A d of zero or less returns at once, with ctx's error if it ended.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

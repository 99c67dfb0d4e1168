package repair

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestLimiterArithmetic(t *testing.T) {
	t0 := utc("2025-03-10T00:00:00Z")
	ms := time.Millisecond
	type step struct {
		at   time.Duration // after t0
		n    int64
		wait time.Duration
	}
	for _, tc := range []struct {
		name  string
		l     Limiter
		steps []step
	}{
		{"burst then rate", Limiter{Rate: 1000, Burst: 1000}, []step{
			{0, 1000, 0},     // the full burst at once
			{0, 1, 1 * ms},   // then one byte per millisecond
			{0, 10, 11 * ms}, // queued behind the first
			{11 * ms, 1, 12*ms - 11*ms},
			{2 * time.Second, 1000, 0}, // idle: the bucket refilled
		}},
		{"larger than the burst waits, is not refused", Limiter{Rate: 100, Burst: 100}, []step{
			{0, 300, 2 * time.Second},
			{0, 1, 2*time.Second + 10*ms},
		}},
		{"burst defaults to one second", Limiter{Rate: 500}, []step{
			{0, 500, 0},
			{0, 500, time.Second},
		}},
		{"unlimited", Limiter{}, []step{{0, 1 << 40, 0}, {0, 1 << 40, 0}}},
		{"nothing to send", Limiter{Rate: 1}, []step{{0, 0, 0}, {0, -5, 0}, {0, 1, 0}}},
		{"clock going back does not refill", Limiter{Rate: 1000, Burst: 1000}, []step{
			{time.Second, 1000, 0},
			{0, 1000, 2 * time.Second},
		}},
		{"rounded up to the nanosecond", Limiter{Rate: 3, Burst: 1}, []step{
			{0, 1, 0},
			{0, 1, 333333334},
		}},
		{"huge reservation saturates", Limiter{Rate: 1, Burst: 1}, []step{
			{0, 1 << 62, 1<<63 - 1 - time.Second},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.l
			for i, s := range tc.steps {
				if got := l.Reserve(t0.Add(s.at), s.n); got != s.wait {
					t.Fatalf("step %d: Reserve(+%v, %d) = %v, want %v", i, s.at, s.n, got, s.wait)
				}
			}
		})
	}
}

// TestLimiterLongRunRate: a sender that sends whenever the limiter lets it
// never exceeds Burst + Rate·elapsed bytes, and keeps close to the rate.
func TestLimiterLongRunRate(t *testing.T) {
	forSeeds(t, 10, func(t *testing.T, rng *rand.Rand) {
		l := Limiter{Rate: 1 + rng.Int64N(1<<20), Burst: rng.Int64N(1 << 16)}
		burst := l.Burst
		if burst <= 0 {
			burst = l.Rate
		}
		t0 := utc("2025-03-10T00:00:00Z")
		now := t0
		var sent int64
		for range 2000 {
			n := 1 + rng.Int64N(l.Rate/4+1)
			now = now.Add(l.Reserve(now, n))
			sent += n
			elapsed := now.Sub(t0).Seconds()
			if limit := float64(burst) + float64(l.Rate)*elapsed + 1; float64(sent) > limit {
				t.Fatalf("sent %d bytes in %.3fs at rate %d burst %d (limit %.0f)", sent, elapsed, l.Rate, burst, limit)
			}
			now = now.Add(time.Duration(rng.Int64N(int64(time.Millisecond))))
		}
		if elapsed := now.Sub(t0).Seconds(); float64(sent) < 0.5*float64(l.Rate)*elapsed {
			t.Fatalf("sent %d bytes in %.3fs at rate %d: far below the rate", sent, elapsed, l.Rate)
		}
	})
}

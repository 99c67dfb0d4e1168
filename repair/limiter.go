package repair

import (
	"math"
	"math/bits"
	"time"
)

// Limiter is a token bucket over bytes, as pure arithmetic: the caller
// passes the time, and sleeps (or schedules) the wait it is given. It is
// the generic cell rate algorithm (GCRA, ITU-T I.371), which behaves
// exactly as a bucket of Burst bytes refilled at Rate bytes per second but
// keeps only one instant. The node keeps one Limiter per destination
// region for repair traffic, Rate from the open window's BytesPerSecond.
//
// A reservation larger than Burst is granted, with the wait that paying
// for it at Rate takes: an object bigger than the burst is delayed, never
// refused. The zero Limiter is unlimited. Not safe for concurrent use.
type Limiter struct {
	// Rate is the long-run budget in bytes per second; <= 0 is unlimited.
	Rate int64
	// Burst is how many bytes may go at once after an idle spell;
	// <= 0 means Rate (one second's worth).
	Burst int64

	tat time.Time // when every byte reserved so far will have been paid for
}

// Reserve takes n bytes from the bucket at now and returns how long the
// caller must wait before sending them (0: send now). Every call counts,
// waiting or not, so a caller that gives up after reserving should not
// send the bytes and must accept that the budget was spent.
func (l *Limiter) Reserve(now time.Time, n int64) time.Duration {
	if l.Rate <= 0 || n <= 0 {
		return 0
	}
	burst := l.Burst
	if burst <= 0 {
		burst = l.Rate
	}
	base := l.tat
	if base.Before(now) {
		base = now
	}
	l.tat = base.Add(bytesTime(n, l.Rate))
	wait := l.tat.Sub(now) - bytesTime(burst, l.Rate)
	return max(wait, 0)
}

// bytesTime returns how long n bytes take at rate bytes per second,
// rounded up to the nanosecond and saturating at the largest Duration.
func bytesTime(n, rate int64) time.Duration {
	hi, lo := bits.Mul64(uint64(n), uint64(time.Second))
	if hi >= uint64(rate) {
		return math.MaxInt64
	}
	q, rem := bits.Div64(hi, lo, uint64(rate))
	if rem != 0 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(q)
}

package bench

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: microseconds from 1 µs to 60 s, three significant
// digits. A longer latency is recorded as 60 s.
const (
	histMin    = 1
	histMax    = int64(60 * time.Second / time.Microsecond)
	histDigits = 3
)

// Latencies is an HDR histogram of latencies: microsecond resolution,
// three significant digits, from 1 µs to 60 s (longer ones count as 60 s).
// It is what Result's percentiles are computed from, and what other
// reports of latency (the failover drill's) use so that their figures mean
// the same. It is not safe for concurrent use.
type Latencies struct {
	h *hdrhistogram.Histogram
}

// NewLatencies returns an empty histogram.
func NewLatencies() *Latencies {
	return &Latencies{h: hdrhistogram.New(histMin, histMax, histDigits)}
}

// Record adds one latency.
func (l *Latencies) Record(d time.Duration) {
	l.h.RecordValue(min(max(d.Microseconds(), histMin), histMax))
}

// Count is the number of latencies recorded.
func (l *Latencies) Count() int64 { return l.h.TotalCount() }

// QuantileMs returns the latency at percentile q (0–100), in milliseconds;
// 0 when none was recorded.
func (l *Latencies) QuantileMs(q float64) float64 { return ms(l.h.ValueAtQuantile(q)) }

// MeanMs is the mean latency in milliseconds.
func (l *Latencies) MeanMs() float64 { return l.h.Mean() / 1000 }

// MaxMs is the largest latency in milliseconds.
func (l *Latencies) MaxMs() float64 { return ms(l.h.Max()) }

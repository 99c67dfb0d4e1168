package repair

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Window is when repair may run between two datacenters, and how fast.
//
// Cron is a standard five-field cron expression (minute hour day-of-month
// month day-of-week, as crontab(5); parsed by github.com/robfig/cron/v3) or
// one of its descriptors @yearly, @monthly, @weekly, @daily, @midnight,
// @hourly. It is evaluated in UTC: a time zone prefix (CRON_TZ=, TZ=) is
// refused, so a window never shifts or doubles at a daylight-saving change
// and no node needs a time zone database. @every is refused too, since it
// has no fixed start. An empty Cron is a window that is always open — the
// slow continuous pass inside a datacenter (Pair{"us-east", "us-east"}).
//
// Each time the expression fires, a window opens for Duration (which must
// be positive for a cron window, and zero for an always-open one).
// Windows of one pair that overlap count as one longer window.
type Window struct {
	// Pair names the two datacenters, in either order; both the same for
	// repair inside one datacenter.
	Pair [2]string
	// Cron is when the window opens (UTC), or "" for always.
	Cron string
	// Duration is how long the window stays open.
	Duration time.Duration
	// BytesPerSecond is the repair traffic budget per destination region
	// while this window is open. 0 means DefaultBytesPerSecond.
	BytesPerSecond int64
	// PassInterval is the least time between the starts of two full
	// passes of a keyspace over this pair. 0 means: once per opening of a
	// cron window (a pass that completes early waits for the next
	// opening), and DefaultContinuousInterval for an always-open window.
	PassInterval time.Duration
	// Spread paces a pass: its segments are spread evenly over Spread
	// from the pass's start (segment i of n is not planned before
	// PassStarted + i·Spread/n), so a background pass runs at a low,
	// steady rate instead of in one burst. 0: no pacing, segments run back
	// to back.
	Spread time.Duration
}

// DefaultContinuousInterval is how often an always-open window (the
// continuous pass inside a datacenter) starts a pass when PassInterval is
// not set. A pass reads and hashes every key of the range once, so this
// bounds that cost; it also bounds how long tombstone collection waits for
// repair inside a datacenter.
const DefaultContinuousInterval = time.Hour

// DefaultBytesPerSecond is the repair budget of a window that names none:
// 24 MiB/s (about 200 Mbit/s), Cassandra's default
// inter_dc_stream_throughput_outbound.
const DefaultBytesPerSecond = 24 << 20

// Rate returns the window's byte budget per second, the default applied.
func (w Window) Rate() int64 {
	if w.BytesPerSecond == 0 {
		return DefaultBytesPerSecond
	}
	return w.BytesPerSecond
}

// Always reports whether the window is always open.
func (w Window) Always() bool { return w.Cron == "" }

// maxWindowMerge bounds how many overlapping openings NextWindow joins
// into one window ("* * * * *" with a week-long Duration would otherwise
// take 10080 steps); past it the window simply ends earlier than it
// could, and the next call continues it.
const maxWindowMerge = 1024

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// validateRef is the fixed instant Validate asks a schedule about, so
// validation reads no clock: a schedule that fires at all fires within
// five years of any date (robfig/cron's search limit; February 29 does).
var validateRef = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func parseCron(expr string) (cron.Schedule, error) {
	s := strings.TrimSpace(expr)
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		return nil, errors.New("time zone prefixes are not supported: windows are in UTC (write the hours in UTC)")
	}
	if strings.HasPrefix(s, "@every") {
		return nil, errors.New("@every has no fixed start: write a cron expression or a descriptor such as @daily")
	}
	sched, err := cronParser.Parse(s)
	if err != nil {
		return nil, err
	}
	if sched.Next(validateRef).IsZero() {
		return nil, errors.New("never fires")
	}
	return sched, nil
}

// Validate reports what is wrong with the window, naming it by pair and
// cron expression.
func (w Window) Validate() error { return errors.Join(w.problems()...) }

func (w Window) problems() []error {
	var errs []error
	if w.Pair[0] == "" || w.Pair[1] == "" {
		errs = append(errs, errors.New("pair needs two datacenter names (the same one twice for repair inside a datacenter)"))
	}
	if w.Cron == "" {
		if w.Duration != 0 {
			errs = append(errs, fmt.Errorf("duration %v given for an always-open window (no cron): set a cron expression or drop the duration", w.Duration))
		}
	} else {
		if _, err := parseCron(w.Cron); err != nil {
			errs = append(errs, fmt.Errorf("bad cron expression %q: %w", w.Cron, err))
		}
		if w.Duration <= 0 {
			errs = append(errs, fmt.Errorf("duration %v: a window needs a positive duration", w.Duration))
		}
	}
	if w.PassInterval < 0 {
		errs = append(errs, fmt.Errorf("pass interval %v is negative", w.PassInterval))
	}
	if w.Spread < 0 {
		errs = append(errs, fmt.Errorf("spread %v is negative", w.Spread))
	}
	if w.BytesPerSecond < 0 {
		errs = append(errs, fmt.Errorf("bytes per second %d is negative (0 means the default, %d)", w.BytesPerSecond, DefaultBytesPerSecond))
	}
	return errs
}

// ValidateWindows checks every window and reports every problem at once,
// each as a *WindowError naming the window.
func ValidateWindows(ws []Window) error {
	var errs []error
	for i, w := range ws {
		for _, e := range w.problems() {
			errs = append(errs, &WindowError{Index: i, Pair: w.Pair, Err: e})
		}
	}
	return errors.Join(errs...)
}

// NextWindow returns the window that is open at now, or else the next one
// to open: start <= now < end for an open window, now < start otherwise.
// Overlapping openings join into one window. For an always-open window it
// returns (now, zero time); for an invalid window, or one that never fires
// again, two zero times. Times are in UTC.
func NextWindow(w Window, now time.Time) (start, end time.Time) {
	now = now.UTC()
	if w.Always() {
		return now, time.Time{}
	}
	if w.Duration <= 0 {
		return time.Time{}, time.Time{}
	}
	sched, err := parseCron(w.Cron)
	if err != nil {
		return time.Time{}, time.Time{}
	}
	// The earliest opening in (now-Duration, ∞) is the earliest window
	// still open at now or opening later. cron schedules have one-second
	// resolution and Next is strictly after its argument.
	start = sched.Next(now.Add(-w.Duration))
	if start.IsZero() {
		return time.Time{}, time.Time{}
	}
	end = start.Add(w.Duration)
	for cur, i := start, 0; i < maxWindowMerge; i++ {
		n := sched.Next(cur)
		if n.IsZero() || n.After(end) {
			break
		}
		cur, end = n, n.Add(w.Duration)
	}
	return start, end
}

// InWindow reports whether w is open at now.
func InWindow(w Window, now time.Time) bool {
	if w.Always() {
		return w.Duration == 0
	}
	start, end := NextWindow(w, now)
	return !start.IsZero() && !now.Before(start) && now.Before(end)
}

// samePair reports whether pair names the datacenters a and b, in either
// order.
func samePair(pair [2]string, a, b string) bool {
	return (pair[0] == a && pair[1] == b) || (pair[0] == b && pair[1] == a)
}

// CanonicalPair orders a pair's names, so a pair has one spelling in
// checkpoints and tasks.
func CanonicalPair(p [2]string) [2]string {
	if p[1] < p[0] {
		return [2]string{p[1], p[0]}
	}
	return p
}

func pairString(p [2]string) string {
	if p[0] == p[1] {
		return "inside " + p[0]
	}
	return p[0] + "↔" + p[1]
}

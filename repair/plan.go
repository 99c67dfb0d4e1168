package repair

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// TaskKind says why a task was planned.
type TaskKind uint8

const (
	// TaskPass is the next range of a pair's pass over the ring.
	TaskPass TaskKind = iota
	// TaskDirty is a range a dropped hint left diverging (DirtySet).
	TaskDirty
)

func (k TaskKind) String() string {
	if k == TaskDirty {
		return "dirty"
	}
	return "pass"
}

// Task is one range to repair now: compare the trees of every replica of
// Range in Pair's two datacenters (one session per replica pair), then
// exchange and merge the keys that differ, sending at most BytesPerSecond
// to each destination region. The node stops by WindowEnd (zero: no end)
// and records only a task that completed (Progress.Record, then
// DirtySet.Clear); an interrupted task is planned again in the next
// window.
type Task struct {
	Kind           TaskKind
	Pair           [2]string // sorted
	Keyspace       string
	Range          Range
	WindowEnd      time.Time
	BytesPerSecond int64
}

// Plan decides which ranges to repair at now (decide, then do: the node
// carries the tasks out). For every checkpoint in progress — one per pair
// of datacenters and keyspace that the node is responsible for repairing;
// NewProgress for one never repaired — whose pair has a window open at
// now, it plans at most one task:
//
//  1. the oldest dirty range of that pair and keyspace, if any;
//  2. otherwise the first range of the pass in progress not yet done,
//     clipped to one of the pass's Segments;
//  3. otherwise, if the pair may start a new pass (see
//     Window.PassInterval), the first segment of a new pass.
//
// If several windows of the pair are open, the task may run until the
// latest of their ends, at the largest of their budgets. Windows must
// have passed ValidateWindows; an invalid one never opens. Tasks come
// dirty ones first, then pairs whose last full repair is oldest (never
// first), then by pair and keyspace. dirty may be nil.
func Plan(windows []Window, progress []Progress, dirty *DirtySet, now time.Time) []Task {
	now = now.UTC()
	type planned struct {
		task     Task
		lastFull time.Time
	}
	var out []planned
	for _, p := range progress {
		pair := CanonicalPair(p.Pair)
		open, ok := openWindow(windows, pair, now)
		if !ok {
			continue
		}
		t := Task{Pair: pair, Keyspace: p.Keyspace, WindowEnd: open.end, BytesPerSecond: open.rate}
		if d := dirty.For(pair, p.Keyspace); len(d) > 0 {
			t.Kind, t.Range = TaskDirty, d[0].Range
		} else if r, ok := nextPassRange(p, open, now); ok {
			t.Kind, t.Range = TaskPass, r
		} else {
			continue
		}
		out = append(out, planned{t, p.LastFullCompleted})
	}
	slices.SortFunc(out, func(a, b planned) int {
		return cmp.Or(
			-cmp.Compare(a.task.Kind, b.task.Kind), // TaskDirty first
			a.lastFull.Compare(b.lastFull),
			strings.Compare(a.task.Pair[0], b.task.Pair[0]),
			strings.Compare(a.task.Pair[1], b.task.Pair[1]),
			strings.Compare(a.task.Keyspace, b.task.Keyspace))
	})
	tasks := make([]Task, len(out))
	for i, p := range out {
		tasks[i] = p.task
	}
	return tasks
}

// openSpan is the union of a pair's windows open at one instant.
type openSpan struct {
	start, end time.Time // end zero: no end
	rate       int64
	always     bool
	interval   time.Duration // the least PassInterval asked for (0: none)
	spread     time.Duration // the least Spread (0: a window without pacing)
}

func openWindow(windows []Window, pair [2]string, now time.Time) (openSpan, bool) {
	var o openSpan
	found := false
	for _, w := range windows {
		if !samePair(w.Pair, pair[0], pair[1]) || w.Validate() != nil || !InWindow(w, now) {
			continue
		}
		start, end := NextWindow(w, now)
		interval := w.PassInterval
		if w.Always() && interval == 0 {
			interval = DefaultContinuousInterval
		}
		if !found {
			o = openSpan{start: start, end: end, rate: w.Rate(), always: w.Always(), interval: interval, spread: w.Spread}
			found = true
			continue
		}
		if start.Before(o.start) {
			o.start = start
		}
		if o.end.IsZero() || end.IsZero() {
			o.end = time.Time{}
		} else if end.After(o.end) {
			o.end = end
		}
		o.rate = max(o.rate, w.Rate())
		o.always = o.always || w.Always()
		if interval > 0 && (o.interval == 0 || interval < o.interval) {
			o.interval = interval
		}
		o.spread = min(o.spread, w.Spread)
	}
	return o, found
}

// nextPassRange returns the next range of p's pass, starting a new pass if
// the window allows.
func nextPassRange(p Progress, open openSpan, now time.Time) (Range, bool) {
	if p.PassStarted.IsZero() && !p.LastFullCompleted.IsZero() {
		if !open.always && p.LastFullCompleted.After(open.start) {
			return Range{}, false // one pass per opening of a cron window
		}
		if open.interval > 0 && now.Before(p.LastFullStarted.Add(open.interval)) {
			return Range{}, false
		}
	}
	done, err := rangeSetOf(p.Done)
	if err != nil {
		return Range{}, false
	}
	gap, ok := done.firstGap(FullRing)
	if !ok {
		return Range{}, false
	}
	n := segmentsOrDefault(p.Segments)
	seg := SegmentOf(gap.From, n)
	if open.spread > 0 && !p.PassStarted.IsZero() {
		// Pacing: segment seg of the pass waits for its share of Spread.
		if due := p.PassStarted.Add(time.Duration(int64(open.spread) / int64(n) * int64(seg))); now.Before(due) {
			return Range{}, false
		}
	}
	if end := segmentStart(seg+1, n); end != 0 && (gap.To == 0 || gap.To > end) {
		gap.To = end
	}
	return gap, true
}

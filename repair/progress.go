package repair

import (
	"fmt"
	"time"

	"github.com/meridian-kv/meridian/codec"
)

// RangeStats counts the work of repairing ranges.
type RangeStats struct {
	_ struct{} `cbor:",toarray"`
	// KeysCompared is the number of keys the compared trees covered (the
	// larger side's count).
	KeysCompared int64
	// KeysFixed is the number of objects merged into either side.
	KeysFixed int64
	// BytesSent is every byte of the session's payloads that crossed the
	// link, in both directions: tree levels, digests and objects.
	BytesSent int64
}

// Add adds o's counts to s.
func (s *RangeStats) Add(o RangeStats) {
	s.KeysCompared += o.KeysCompared
	s.KeysFixed += o.KeysFixed
	s.BytesSent += o.BytesSent
}

// Progress is the checkpoint of the repair of one keyspace between one
// pair of datacenters. The node keeps it durably (EncodeProgress into the
// store's repair state), updates it with Record after every task it
// completes, and hands it to Plan; after a restart or when a window closes
// the pass resumes from Done.
//
// A pass repairs every range of the ring once. A tombstone of the keyspace
// written before LastFullStarted has been compared between the pair in
// every range by a repair that completed: that is what tombstone
// collection waits for (across every pair that holds the keyspace).
type Progress struct {
	Pair     [2]string // sorted
	Keyspace string
	// Segments is the number of equal ranges the current pass cuts the
	// ring into; 0 means DefaultSegments.
	Segments int
	// PassStarted is when the first range of the current pass started;
	// zero while no pass is in progress.
	PassStarted time.Time
	// Done lists the ranges of the current pass already repaired, sorted
	// and disjoint.
	Done []Range
	// Pass counts the work of the current pass.
	Pass RangeStats

	// LastFullStarted and LastFullCompleted bound the last pass that
	// covered the whole ring; zero if none has.
	LastFullStarted, LastFullCompleted time.Time
	// LastPass counts the work of that pass.
	LastPass RangeStats
	// Total counts every task recorded, passes and dirty ranges alike.
	Total RangeStats
}

// NewProgress returns the checkpoint of a pair and keyspace that has never
// been repaired.
func NewProgress(pair [2]string, ks string) Progress {
	return Progress{Pair: CanonicalPair(pair), Keyspace: ks}
}

// Fraction returns the share of the ring the current pass has repaired.
func (p *Progress) Fraction() float64 {
	rs, err := rangeSetOf(p.Done)
	if err != nil {
		return 0
	}
	return rs.fraction()
}

// Record notes that task completed: its range was compared and reconciled
// between every replica of the range in both datacenters, from started
// to finished, at the cost s. A task of a pass, or a dirty-range task while
// a pass is in progress, counts towards the pass; when the pass then covers
// the ring it completes, LastFull* are set and the next pass starts empty.
// A dirty-range task outside a pass counts only towards Total.
func (p *Progress) Record(task Task, s RangeStats, started, finished time.Time) error {
	if err := task.Range.Validate(); err != nil {
		return err
	}
	p.Total.Add(s)
	if task.Kind != TaskPass && p.PassStarted.IsZero() {
		return nil
	}
	done, err := rangeSetOf(p.Done)
	if err != nil {
		return err
	}
	done = done.add(task.Range)
	if p.PassStarted.IsZero() || started.Before(p.PassStarted) {
		p.PassStarted = started.UTC()
	}
	p.Pass.Add(s)
	if !done.full() {
		p.Done = done.ranges()
		return nil
	}
	p.LastFullStarted, p.LastFullCompleted = p.PassStarted, finished.UTC()
	p.LastPass = p.Pass
	p.PassStarted, p.Done, p.Pass = time.Time{}, nil, RangeStats{}
	return nil
}

// progressFormat versions the encoding of a checkpoint.
const progressFormat = 1

type progressWire struct {
	Format            int        `cbor:"1,keyasint"`
	Pair              [2]string  `cbor:"2,keyasint"`
	Keyspace          string     `cbor:"3,keyasint"`
	Segments          int        `cbor:"4,keyasint,omitempty"`
	PassStarted       int64      `cbor:"5,keyasint,omitempty"`
	Done              []Range    `cbor:"6,keyasint,omitempty"`
	Pass              RangeStats `cbor:"7,keyasint"`
	LastFullStarted   int64      `cbor:"8,keyasint,omitempty"`
	LastFullCompleted int64      `cbor:"9,keyasint,omitempty"`
	LastPass          RangeStats `cbor:"10,keyasint"`
	Total             RangeStats `cbor:"11,keyasint"`
}

// unixNano and fromUnixNano map the zero time to 0 and back (zero's
// UnixNano is out of int64's range).
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// EncodeProgress returns the deterministic CBOR of a checkpoint.
func EncodeProgress(p Progress) ([]byte, error) {
	return codec.Marshal(progressWire{
		Format:            progressFormat,
		Pair:              p.Pair,
		Keyspace:          p.Keyspace,
		Segments:          p.Segments,
		PassStarted:       unixNano(p.PassStarted),
		Done:              p.Done,
		Pass:              p.Pass,
		LastFullStarted:   unixNano(p.LastFullStarted),
		LastFullCompleted: unixNano(p.LastFullCompleted),
		LastPass:          p.LastPass,
		Total:             p.Total,
	})
}

// DecodeProgress parses what EncodeProgress wrote, refusing anything
// malformed with an error wrapping ErrBadProgress.
func DecodeProgress(b []byte) (Progress, error) {
	var w progressWire
	if err := codec.Unmarshal(b, &w); err != nil {
		return Progress{}, fmt.Errorf("%w: %w", ErrBadProgress, err)
	}
	if w.Format != progressFormat {
		return Progress{}, fmt.Errorf("%w: format %d (this node reads %d)", ErrBadProgress, w.Format, progressFormat)
	}
	if w.Pair[0] == "" || w.Pair[1] == "" || w.Keyspace == "" {
		return Progress{}, fmt.Errorf("%w: missing pair or keyspace", ErrBadProgress)
	}
	if w.Segments < 0 || w.Segments > MaxSegments {
		return Progress{}, fmt.Errorf("%w: %d segments", ErrBadProgress, w.Segments)
	}
	done, err := rangeSetOf(w.Done)
	if err != nil {
		return Progress{}, fmt.Errorf("%w: %w", ErrBadProgress, err)
	}
	if done.full() {
		return Progress{}, fmt.Errorf("%w: the pass in progress covers the whole ring (it should have completed)", ErrBadProgress)
	}
	for _, s := range []RangeStats{w.Pass, w.LastPass, w.Total} {
		if s.KeysCompared < 0 || s.KeysFixed < 0 || s.BytesSent < 0 {
			return Progress{}, fmt.Errorf("%w: negative counter", ErrBadProgress)
		}
	}
	p := Progress{
		Pair:              CanonicalPair(w.Pair),
		Keyspace:          w.Keyspace,
		Segments:          w.Segments,
		PassStarted:       fromUnixNano(w.PassStarted),
		Pass:              w.Pass,
		LastFullStarted:   fromUnixNano(w.LastFullStarted),
		LastFullCompleted: fromUnixNano(w.LastFullCompleted),
		LastPass:          w.LastPass,
		Total:             w.Total,
	}
	if len(done) > 0 {
		p.Done = done.ranges()
	}
	return p, nil
}

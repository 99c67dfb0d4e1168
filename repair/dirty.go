package repair

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/meridian-kv/meridian/codec"
)

// DirtySet remembers token ranges that are known to diverge between a pair
// of datacenters since a time span: what a dropped hint leaves behind
// (the hint's write reached some replicas and will never reach its target
// by handoff). Plan schedules dirty ranges of a pair before the rest of
// its pass, so divergence after the hint window is repaired in the next
// open window instead of waiting for the pass to come round.
//
// When a hint for a replica in datacenter X is dropped, the node adds the
// key's token for every pair (X, Y) of datacenters that hold the keyspace,
// X with itself included: each pair's repair clears its own entry. Ranges
// are widened to the segment of the ring that holds them (one of
// Segments equal parts), so the set holds at most one entry per keyspace,
// pair and segment however many hints are dropped; an entry's span grows to
// cover every write it stands for.
//
// A DirtySet is not safe for concurrent use. Persist it with
// EncodeDirtySet so that a restart does not forget it.
type DirtySet struct {
	segments int
	m        map[dirtyKey]dirtySpan
}

type dirtyKey struct {
	ks   string
	pair [2]string
	seg  int
}

type dirtySpan struct{ from, to time.Time }

// DirtyRange is one entry of a DirtySet: writes to Keyspace in Range
// between From and To may be missing on one side of Pair.
type DirtyRange struct {
	Keyspace string
	Pair     [2]string
	Range    Range
	From, To time.Time
}

// NewDirtySet returns an empty set that widens ranges to segments of a
// ring cut into segments equal parts (0: DefaultSegments).
func NewDirtySet(segments int) *DirtySet {
	return &DirtySet{segments: segmentsOrDefault(segments), m: map[dirtyKey]dirtySpan{}}
}

// Add records that writes to keyspace ks in range r, made between from and
// to, may be missing on one side of pair.
func (d *DirtySet) Add(ks string, pair [2]string, r Range, from, to time.Time) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if ks == "" || pair[0] == "" || pair[1] == "" {
		return fmt.Errorf("repair: dirty range needs a keyspace and two datacenter names")
	}
	from, to = from.UTC(), to.UTC()
	if to.Before(from) {
		from, to = to, from
	}
	pair = CanonicalPair(pair)
	for seg := SegmentOf(r.From, d.segments); seg <= SegmentOf(r.last(), d.segments); seg++ {
		k := dirtyKey{ks, pair, seg}
		s, ok := d.m[k]
		if ok {
			if from.Before(s.from) {
				s.from = from
			}
			if to.After(s.to) {
				s.to = to
			}
		} else {
			s = dirtySpan{from, to}
		}
		d.m[k] = s
	}
	return nil
}

// Len returns the number of entries.
func (d *DirtySet) Len() int {
	if d == nil {
		return 0
	}
	return len(d.m)
}

// Entries returns every entry, oldest span first (then by keyspace, pair
// and range). A nil *DirtySet is empty (For, Len and Clear accept it too).
func (d *DirtySet) Entries() []DirtyRange { return d.filter(func(dirtyKey) bool { return true }) }

// For returns the entries of keyspace ks and pair, oldest span first.
func (d *DirtySet) For(pair [2]string, ks string) []DirtyRange {
	pair = CanonicalPair(pair)
	return d.filter(func(k dirtyKey) bool { return k.ks == ks && k.pair == pair })
}

func (d *DirtySet) filter(keep func(dirtyKey) bool) []DirtyRange {
	if d == nil {
		return nil
	}
	var out []DirtyRange
	for _, k := range slices.Collect(maps.Keys(d.m)) {
		if !keep(k) {
			continue
		}
		s := d.m[k]
		out = append(out, DirtyRange{
			Keyspace: k.ks, Pair: k.pair,
			Range: Range{From: segmentStart(k.seg, d.segments), To: segmentStart(k.seg+1, d.segments)},
			From:  s.from, To: s.to,
		})
	}
	slices.SortFunc(out, func(a, b DirtyRange) int {
		return cmp.Or(a.From.Compare(b.From), strings.Compare(a.Keyspace, b.Keyspace),
			strings.Compare(a.Pair[0], b.Pair[0]), strings.Compare(a.Pair[1], b.Pair[1]),
			cmp.Compare(a.Range.From, b.Range.From))
	})
	return out
}

// Clear removes the entries of keyspace ks and pair that a repair of r
// between the pair, started at started, has covered: those whose segment
// lies inside r and whose span ended at or before started (a write after
// the repair's scans may not have been compared). It returns how many it
// removed.
func (d *DirtySet) Clear(pair [2]string, ks string, r Range, started time.Time) int {
	if d == nil || r.Validate() != nil {
		return 0
	}
	pair = CanonicalPair(pair)
	n := 0
	for seg := SegmentOf(r.From, d.segments); seg <= SegmentOf(r.last(), d.segments); seg++ {
		k := dirtyKey{ks, pair, seg}
		s, ok := d.m[k]
		seg := Range{From: segmentStart(seg, d.segments), To: segmentStart(seg+1, d.segments)}
		if ok && (rangeSet{spanOf(r)}).covers(seg) && !s.to.After(started) {
			delete(d.m, k)
			n++
		}
	}
	return n
}

const dirtyFormat = 1

type dirtyWire struct {
	Format   int          `cbor:"1,keyasint"`
	Segments int          `cbor:"2,keyasint"`
	Entries  []dirtyEntry `cbor:"3,keyasint,omitempty"`
}

type dirtyEntry struct {
	_        struct{} `cbor:",toarray"`
	Keyspace string
	Pair     [2]string
	Segment  int
	From, To int64
}

// EncodeDirtySet returns the deterministic CBOR of d.
func EncodeDirtySet(d *DirtySet) ([]byte, error) {
	w := dirtyWire{Format: dirtyFormat, Segments: d.segments}
	for _, e := range d.Entries() {
		w.Entries = append(w.Entries, dirtyEntry{
			Keyspace: e.Keyspace, Pair: e.Pair, Segment: SegmentOf(e.Range.From, d.segments),
			From: unixNano(e.From), To: unixNano(e.To),
		})
	}
	return codec.Marshal(w)
}

// DecodeDirtySet parses what EncodeDirtySet wrote, refusing anything
// malformed with an error wrapping ErrBadProgress.
func DecodeDirtySet(b []byte) (*DirtySet, error) {
	var w dirtyWire
	if err := codec.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadProgress, err)
	}
	if w.Format != dirtyFormat {
		return nil, fmt.Errorf("%w: dirty set format %d (this node reads %d)", ErrBadProgress, w.Format, dirtyFormat)
	}
	if w.Segments <= 0 || w.Segments > MaxSegments {
		return nil, fmt.Errorf("%w: %d segments", ErrBadProgress, w.Segments)
	}
	d := NewDirtySet(w.Segments)
	for _, e := range w.Entries {
		if e.Keyspace == "" || e.Pair[0] == "" || e.Pair[1] == "" || e.Segment < 0 || e.Segment >= w.Segments || e.To < e.From {
			return nil, fmt.Errorf("%w: bad dirty range entry", ErrBadProgress)
		}
		k := dirtyKey{e.Keyspace, CanonicalPair(e.Pair), e.Segment}
		if _, dup := d.m[k]; dup {
			return nil, fmt.Errorf("%w: dirty range entry twice", ErrBadProgress)
		}
		d.m[k] = dirtySpan{fromUnixNano(e.From), fromUnixNano(e.To)}
	}
	return d, nil
}

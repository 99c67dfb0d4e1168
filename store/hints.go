package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"

	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/version"
)

// Hint bounds (HintLimits' defaults).
const (
	// DefaultHintMaxAge is how long a hint waits for its target: Cassandra's
	// max_hint_window. After it, repair has to bring the target up to date.
	DefaultHintMaxAge = 3 * time.Hour
	// DefaultHintMaxBytes bounds the hints kept for one target (256 MiB).
	DefaultHintMaxBytes = 256 << 20
)

// traceIDLen is the length of a hint's trace reference: a W3C trace id (16
// bytes) followed by the span id (8 bytes) of the write, enough for a span
// link from the hint's delivery back to the write that caused it.
const traceIDLen = 24

var (
	// ErrEmptyTarget is returned when a hint names no target node.
	ErrEmptyTarget = errors.New("store: empty hint target (a hint must name the node it is meant for)")

	errEmptyHint = errors.New("store: hint of an empty object (there is nothing to deliver)")
)

// HintLimits bound what a node keeps for one target. Zero fields mean
// defaults.
type HintLimits struct {
	// MaxAge is how long a hint is kept, from when it was first stored,
	// before ExpireHints drops it; 0 means DefaultHintMaxAge (3h).
	// AddHint does not look at it: pass it to ExpireHints, which enforces
	// it.
	MaxAge time.Duration
	// MaxBytesPerTarget bounds the bytes (Pebble keys plus values) of the
	// hints kept for one target; 0 means DefaultHintMaxBytes (256 MiB). A
	// write-ahead hint (UpdateQueued) counts its small record, not the
	// object it names.
	MaxBytesPerTarget int64
}

// Validate reports every problem with l at once.
func (l HintLimits) Validate() error {
	var errs []error
	if l.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("store: negative hint MaxAge %v (use 0 for the %v default)", l.MaxAge, DefaultHintMaxAge))
	}
	if l.MaxBytesPerTarget < 0 {
		errs = append(errs, fmt.Errorf("store: negative hint MaxBytesPerTarget %d (use 0 for the %d MiB default)", l.MaxBytesPerTarget, DefaultHintMaxBytes>>20))
	}
	return errors.Join(errs...)
}

func (l HintLimits) withDefaults() HintLimits {
	if l.MaxAge == 0 {
		l.MaxAge = DefaultHintMaxAge
	}
	if l.MaxBytesPerTarget == 0 {
		l.MaxBytesPerTarget = DefaultHintMaxBytes
	}
	return l
}

// Hint is a version.Object this node holds on behalf of Target, a replica
// that could not be written (Dynamo §4.6). It is delivered by merging
// Object into the target's copy of the key.
type Hint struct {
	// Target is the id of the node the write was meant for.
	Target   string
	Keyspace string
	Key      []byte
	// Object is everything held for the target under this key: the join
	// of every object added for it since it was last delivered. For a
	// write-ahead hint, which names the stored object rather than holding
	// a copy, it is the key's stored object as Hints read it.
	Object *version.Object
	// Created is when the first hint for this (Target, Keyspace, Key) was
	// stored; merging later objects in keeps it, so a hint's age is that
	// of its oldest data.
	Created time.Time
	// Trace is the W3C trace id and span id (16 + 8 bytes) of the write
	// that created the hint, or nil; kept from the first store.
	Trace []byte
}

// HintStat is what a node holds for one target.
type HintStat struct {
	Count int
	// Bytes is the size of the hints' Pebble keys and values.
	Bytes int64
}

// hintRecord is the stored form of a hint, after the format byte.
type hintRecord struct {
	_ struct{} `cbor:",toarray"`
	// Created is in Unix nanoseconds.
	Created int64
	Trace   []byte
	Object  *version.Object
	// Ref is the clock of a reference hint (hintFormatRef), nil for a hint
	// that holds its object. A reference hint holds no object: what it
	// owes its target is the key's stored object, which descends Ref.
	Ref version.Vector `cbor:"-"`
}

// owedBy reports whether obj, a copy the target acknowledged, holds
// everything rec stands for. A reference hint is owed anything whose clock
// descends its own (the stored objects a coordinator writes never drop a
// write they have seen); a hint holding its object is owed exactly that
// object (DeleteHint's rule) or, with descends, anything that covers it
// (ClearHints' rule).
func (rec *hintRecord) owedBy(obj *version.Object, descends bool) bool {
	switch {
	case obj.IsEmpty():
		return false
	case rec.Ref != nil:
		return obj.Clock.Descends(rec.Ref)
	case descends:
		return version.Descends(obj, rec.Object)
	}
	return version.Equal(rec.Object, obj)
}

// hintHeader decodes a stored hint without its object (for expiry).
type hintHeader struct {
	_       struct{} `cbor:",toarray"`
	Created int64
	Trace   []byte
	// Object is the encoded object, or a reference hint's encoded clock.
	Object codec.RawMessage
	// ref is set for a reference hint (hintFormatRef).
	ref bool
}

// hintRef is the stored form of a reference hint, after the format byte.
type hintRef struct {
	_       struct{} `cbor:",toarray"`
	Created int64
	Trace   []byte
	Clock   version.Vector
}

// Stored hints start with a format byte:
//
//   - hintFormatV1: CBOR of hintRecord, the hint holds its object. AddHint
//     writes these, for objects this node may not store itself (a sloppy
//     quorum's stand-in), as does a write-ahead hint merged into one;
//   - hintFormatRef: CBOR of hintRef, the hint names the key's object in
//     this store by clock instead of holding a copy. UpdateQueued writes
//     these (write-ahead hints, writeahead.go): the object is committed in
//     the same batch, and every later write of the key merges into it, so
//     the stored object always holds what the hint owes. A write thus
//     costs one small record per target rather than one copy of its value.
const (
	hintFormatV1  byte = 1
	hintFormatRef byte = 2
)

// encodeHint returns the stored form of a hint that holds its object.
func encodeHint(rec *hintRecord) ([]byte, error) {
	b, err := codec.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("store: encode hint: %w", err)
	}
	out := make([]byte, 0, 1+len(b))
	out = append(out, hintFormatV1)
	return append(out, b...), nil
}

// encodeHintRef returns the stored form of a reference hint owing its
// target the writes of clock: the format byte and the bytes codec.Marshal
// writes for a hintRef, without reflection
// (TestReferenceHintEncodingMatchesCodec).
func encodeHintRef(created int64, trace []byte, clock version.Vector) []byte {
	b := make([]byte, 0, 2+9+1+len(trace)+9+len(clock)*32)
	b = append(b, hintFormatRef, 0x80|3)
	b = codec.AppendInt(b, created)
	b = codec.AppendBytes(b, trace)
	return version.AppendClock(b, clock)
}

// decodeHintHeader parses a value made by encodeHint or encodeHintRef up
// to, not into, its object or clock. The result does not alias v. Callers
// wrap its errors with hintCorrupt.
func decodeHintHeader(v []byte) (*hintHeader, error) {
	if len(v) == 0 {
		return nil, errors.New("empty value")
	}
	if v[0] != hintFormatV1 && v[0] != hintFormatRef {
		return nil, fmt.Errorf("unknown hint format %d (written by a newer Meridian, or damaged)", v[0])
	}
	var h hintHeader
	if err := codec.Unmarshal(v[1:], &h); err != nil {
		return nil, err
	}
	h.ref = v[0] == hintFormatRef
	if h.Created <= 0 {
		return nil, fmt.Errorf("hint creation time %d is not after 1970", h.Created)
	}
	if len(h.Trace) != 0 && len(h.Trace) != traceIDLen {
		return nil, fmt.Errorf("hint trace id of %d bytes, want %d", len(h.Trace), traceIDLen)
	}
	if len(h.Trace) == 0 {
		h.Trace = nil
	}
	switch {
	case h.ref:
		// A version.Vector is a CBOR map; 0xa0 is the empty one.
		if len(h.Object) == 0 || h.Object[0]>>5 != codec.MajorMap {
			return nil, errors.New("reference hint holds no clock")
		}
		if h.Object[0] == 0xa0 {
			return nil, errors.New("reference hint holds an empty clock")
		}
	// A version.Object is a CBOR array (toarray); checking the major type
	// catches a missing object without decoding it.
	case len(h.Object) == 0 || h.Object[0]>>5 != codec.MajorArray:
		return nil, errors.New("hint holds no object")
	}
	return &h, nil
}

// decodeHint parses a value made by encodeHint. The result does not alias
// v. Callers wrap its errors with hintCorrupt.
func decodeHint(v []byte) (*hintRecord, error) {
	h, err := decodeHintHeader(v)
	if err != nil {
		return nil, err
	}
	if h.ref {
		var clock version.Vector
		if err := codec.Unmarshal(h.Object, &clock); err != nil {
			return nil, fmt.Errorf("reference hint clock: %w", err)
		}
		if len(clock) == 0 {
			return nil, errors.New("reference hint holds an empty clock")
		}
		return &hintRecord{Created: h.Created, Trace: h.Trace, Ref: clock}, nil
	}
	obj := version.New()
	if err := codec.Unmarshal(h.Object, obj); err != nil {
		return nil, fmt.Errorf("hint object: %w", err)
	}
	if obj.IsEmpty() {
		return nil, errors.New("hint holds no object")
	}
	return &hintRecord{Created: h.Created, Trace: h.Trace, Object: obj}, nil
}

// hintCorrupt wraps the cause of an undecodable hint.
func hintCorrupt(target, ks string, key []byte, cause error) error {
	return fmt.Errorf("%w: hint for %q, keyspace %q key %s: %w", ErrCorrupt, target, ks, printableKey(key), cause)
}

// hintKey returns the Pebble key of the hint for target of key (with ring
// token tok) in keyspace ks:
//
//	'h' | uvarint(len(target)) | target | uvarint(len(ks)) | ks | token (8 bytes, big-endian) | key
//
// so the hints of one target are one contiguous range, in keyspace then
// ring order.
func hintKey(target, ks string, tok uint64, key []byte) []byte {
	out := keyspacePrefix(kindHint, target)
	out = binary.AppendUvarint(out, uint64(len(ks)))
	out = append(out, ks...)
	out = binary.BigEndian.AppendUint64(out, tok)
	return append(out, key...)
}

// lengthPrefixed splits uvarint(n) | n bytes | rest.
func lengthPrefixed(b []byte) (s, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, false
	}
	return b[w : w+int(n)], b[w+int(n):], true
}

// hintKeyTarget returns the target of a hint key and the length of the
// target's prefix.
func hintKeyTarget(k []byte) (target string, prefixLen int, err error) {
	if len(k) == 0 || k[0] != kindHint {
		return "", 0, errors.New("not a hint key")
	}
	t, rest, ok := lengthPrefixed(k[1:])
	if !ok {
		return "", 0, errors.New("hint key with a malformed target")
	}
	return string(t), len(k) - len(rest), nil
}

// splitHintKey parses the part of a hint key after its target prefix. The
// returned key aliases k.
func splitHintKey(k []byte, prefixLen int) (ks string, tok uint64, key []byte, err error) {
	b, rest, ok := lengthPrefixed(k[prefixLen:])
	if !ok {
		return "", 0, nil, errors.New("hint key with a malformed keyspace")
	}
	if len(rest) < tokenLen {
		return "", 0, nil, fmt.Errorf("hint key of %d bytes is shorter than its prefix and token", len(k))
	}
	return string(b), binary.BigEndian.Uint64(rest), rest[tokenLen:], nil
}

// validateHint checks a hint's target, keyspace and key.
func validateHint(target, ks string, key []byte) error {
	if target == "" {
		return ErrEmptyTarget
	}
	return validate(ks, key)
}

// hintBook keeps the count and bytes of the hints stored per target, in
// memory, consistent with disk: a change is applied after its write
// succeeded, while the hint's lock stripe is still held. Adds that are
// writing reserve their growth first, so concurrent adds cannot together
// overshoot MaxBytesPerTarget.
type hintBook struct {
	mu      sync.Mutex
	targets map[string]*hintTally
}

type hintTally struct {
	count           int
	bytes, reserved int64
}

// hintPresence counts, per slot of a hash of the Pebble key, the hints
// stored: a slot at zero means no hint with a key of that slot exists, so
// the lookups of a write-ahead hint, which are nearly all for hints that do
// not exist, skip Pebble. A slot never counts fewer hints than exist: a
// new hint is counted before its batch commits (and uncounted if it fails),
// a removed one only after its delete committed, and Open counts every hint
// key on disk. Collisions only cost a lookup.
type hintPresence struct {
	slots [hintPresenceSlots]atomic.Uint32
}

// hintPresenceSlots is the size of the presence table (256 KiB).
const hintPresenceSlots = 1 << 16

func hintSlot(k []byte) uint32 { return uint32(xxhash.Sum64(k) % hintPresenceSlots) }

// add counts a hint under k (before it is committed).
func (p *hintPresence) add(k []byte) { p.slots[hintSlot(k)].Add(1) }

// remove uncounts a hint under k (after its delete committed, or when its
// write failed).
func (p *hintPresence) remove(k []byte) { p.slots[hintSlot(k)].Add(^uint32(0)) }

// maybe reports whether a hint under k may exist.
func (p *hintPresence) maybe(k []byte) bool { return p.slots[hintSlot(k)].Load() > 0 }

// tally returns the tally of target, creating it. b.mu must be held.
func (b *hintBook) tally(target string) *hintTally {
	if b.targets == nil {
		b.targets = map[string]*hintTally{}
	}
	t := b.targets[target]
	if t == nil {
		t = &hintTally{}
		b.targets[target] = t
	}
	return t
}

// tidy forgets target if nothing is held or reserved for it. b.mu must be
// held.
func (b *hintBook) tidy(target string) {
	if t := b.targets[target]; t != nil && t.count == 0 && t.bytes == 0 && t.reserved == 0 {
		delete(b.targets, target)
	}
}

// reserve reserves growth bytes for target if that keeps it within limit,
// and returns how many bytes it reserved (0 for growth <= 0).
func (b *hintBook) reserve(target string, growth, limit int64) (reserved int64, ok bool) {
	if growth <= 0 {
		return 0, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.tally(target)
	if t.bytes+t.reserved+growth > limit {
		b.tidy(target)
		return 0, false
	}
	t.reserved += growth
	return growth, true
}

// settle releases a reservation and, if the write it was for succeeded,
// applies its change.
func (b *hintBook) settle(target string, reserved, bytes int64, count int, written bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.tally(target)
	t.reserved -= reserved
	if written {
		t.bytes += bytes
		t.count += count
	}
	b.tidy(target)
}

// HintStats returns the count and bytes of the hints pending per target.
// It is kept in memory and rebuilt by a scan at Open, so it survives
// restarts. Targets with no hints are absent.
func (s *Store) HintStats() map[string]HintStat {
	s.hints.mu.Lock()
	defer s.hints.mu.Unlock()
	out := make(map[string]HintStat, len(s.hints.targets))
	for target, t := range s.hints.targets {
		if t.count > 0 {
			out[target] = HintStat{Count: t.count, Bytes: t.bytes}
		}
	}
	return out
}

// loadHintStats rebuilds s.hints from disk, at Open.
func (s *Store) loadHintStats() error {
	stats, err := s.scanHintStats()
	if err != nil {
		return err
	}
	s.hints.mu.Lock()
	defer s.hints.mu.Unlock()
	for target, st := range stats {
		t := s.hints.tally(target)
		t.count, t.bytes = st.Count, st.Bytes
	}
	return nil
}

// scanHintStats counts the hints on disk per target. It reads keys and
// value lengths only; a hint key whose target does not parse is logged and
// left out (ExpireHints removes it).
func (s *Store) scanHintStats() (stats map[string]HintStat, err error) {
	defer catchFatal(&err, s.fail)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindHint}, UpperBound: []byte{kindHint + 1}})
	if err != nil {
		return nil, fmt.Errorf("store: count hints: %w", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: count hints: %w", cerr)
		}
	}()
	stats = map[string]HintStat{}
	for valid := it.First(); valid; valid = it.Next() {
		s.present.add(it.Key())
		target, _, err := hintKeyTarget(it.Key())
		if err != nil {
			s.log.errLogger().Error("store: skipping a corrupt hint record", "key", printableKey(it.Key()), "err", err)
			continue
		}
		lv := it.LazyValue()
		st := stats[target]
		st.Count++
		st.Bytes += int64(len(it.Key()) + lv.Len())
		stats[target] = st
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("store: count hints: %w", err)
	}
	return stats, nil
}

// readHint returns the hint stored under Pebble key k and the size of its
// key and value; found is false when there is none. A record that does not
// decode returns an error wrapping ErrCorrupt, with its size.
func (s *Store) readHint(target, ks string, key, k []byte) (rec *hintRecord, size int64, found bool, err error) {
	defer catchFatal(&err, s.fail)
	if !s.present.maybe(k) {
		return nil, 0, false, nil
	}
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("store: read hint for %q, keyspace %q key %s: %w", target, ks, printableKey(key), err)
	}
	defer closer.Close()
	size = int64(len(k) + len(v))
	rec, err = s.openHint(target, ks, key, k, v)
	return rec, size, true, err
}

// openHint opens and decodes v, the stored hint under Pebble key k. An
// error wraps ErrCorrupt, or ErrUnknownKey for a hint sealed under a key
// the keyring lacks.
func (s *Store) openHint(target, ks string, key, k, v []byte) (*hintRecord, error) {
	p, err := s.open(k, v)
	if err != nil {
		return nil, fmt.Errorf("store: hint for %q, keyspace %q key %s: %w", target, ks, printableKey(key), err)
	}
	rec, err := decodeHint(p)
	if err != nil {
		return nil, hintCorrupt(target, ks, key, err)
	}
	return rec, nil
}

// AddHint stores obj for target, merging it (version.Merge) with the hint
// already held for the same (target, ks, key), never overwriting it; the
// merged hint keeps the first hint's Created and trace. It returns only
// once the hint is synced, like Update. Adding an object the hint already
// holds writes nothing and returns stored=true.
//
// If storing the hint would take target's pending bytes (HintStats) past
// lim.MaxBytesPerTarget, nothing is stored and stored=false: the caller
// counts a dropped hint, and repair has to cover the write. trace is the
// W3C trace id and span id (16 + 8 bytes) of the write, or nil.
//
// AddHint takes the key's lock stripe, so it must not be called from an
// Update fn.
func (s *Store) AddHint(target, ks string, key []byte, obj *version.Object, trace []byte, now time.Time, lim HintLimits) (stored bool, err error) {
	if err := validateHint(target, ks, key); err != nil {
		return false, err
	}
	if obj.IsEmpty() {
		return false, errEmptyHint
	}
	if len(trace) == 0 {
		trace = nil
	} else if len(trace) != traceIDLen {
		return false, fmt.Errorf("store: hint trace reference of %d bytes (a W3C trace id and span id make %d, or pass nil)", len(trace), traceIDLen)
	}
	if !now.After(time.Unix(0, 0)) {
		return false, fmt.Errorf("store: hint creation time %v is not after 1970 (pass the current time)", now)
	}
	if err := lim.Validate(); err != nil {
		return false, err
	}
	lim = lim.withDefaults()
	if err := s.acquire(); err != nil {
		return false, err
	}
	defer s.release()
	tok := placement.KeyToken(key)
	k := hintKey(target, ks, tok, key)
	l := s.stripe(tok)
	l.Lock()
	defer l.Unlock()

	old, oldSize, found, err := s.readHint(target, ks, key, k)
	if err != nil {
		return false, err
	}
	rec := &hintRecord{Created: now.UnixNano(), Trace: trace, Object: obj}
	count := 1
	if found {
		if old.Ref != nil {
			// A reference hint becomes one that holds its object: what
			// it owes (the stored object) joined with obj.
			if old.Object, err = s.read(ks, tok, key, objectKey(ks, tok, key)); err != nil {
				return false, err
			}
		}
		merged := version.Merge(old.Object, obj)
		if old.Ref == nil && version.Equal(merged, old.Object) {
			return true, nil
		}
		rec = &hintRecord{Created: old.Created, Trace: old.Trace, Object: merged}
		count = 0
	}
	v, err := encodeHint(rec)
	if err == nil {
		v, err = s.seal(k, v)
	}
	if err != nil {
		return false, err
	}
	growth := int64(len(k)+len(v)) - oldSize
	reserved, ok := s.hints.reserve(target, growth, lim.MaxBytesPerTarget)
	if !ok {
		return false, nil
	}
	if !found {
		s.present.add(k)
	}
	err = s.write(k, v)
	if !found && err != nil {
		s.present.remove(k)
	}
	s.hints.settle(target, reserved, growth, count, err == nil)
	if err != nil {
		if errors.Is(err, ErrFailed) {
			return false, err
		}
		return false, fmt.Errorf("store: write hint for %q, keyspace %q key %s: %w", target, ks, printableKey(key), err)
	}
	return true, nil
}

// Hints calls fn for each pending hint of target, in key order (keyspace,
// then ring token, then key), from one Pebble iterator: a consistent
// point-in-time view, which may include an AddHint whose sync is still in
// flight. limit <= 0 means all. fn owns the Hint and may call DeleteHint
// and AddHint (and every other Store method); an error from fn stops the
// iteration and is returned as is. A hint that does not decode stops it
// with an error wrapping ErrCorrupt; ExpireHints removes such hints.
func (s *Store) Hints(target string, limit int, fn func(h Hint) error) (err error) {
	if target == "" {
		return ErrEmptyTarget
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	defer catchFatal(&err, s.fail)

	prefix := keyspacePrefix(kindHint, target)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("store: hints for %q: %w", target, err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: hints for %q: %w", target, cerr)
		}
	}()
	var orphans []Hint
	defer func() {
		if err == nil {
			err = s.dropOrphans(orphans)
		}
	}()
	n := 0
	for valid := it.First(); valid && (limit <= 0 || n < limit); valid = it.Next() {
		ks, _, key, err := splitHintKey(it.Key(), len(prefix))
		if err != nil {
			return hintCorrupt(target, "", it.Key(), err)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("store: hint for %q, keyspace %q key %s: %w", target, ks, printableKey(key), err)
		}
		rec, err := s.openHint(target, ks, key, it.Key(), v)
		if err != nil {
			return err
		}
		if rec.Ref != nil {
			if rec.Object, err = s.owed(ks, key, rec.Ref); err != nil {
				return err
			}
			if rec.Object == nil {
				orphans = append(orphans, Hint{Target: target, Keyspace: ks, Key: slices.Clone(key)})
				continue
			}
		}
		n++
		h := Hint{
			Target:   target,
			Keyspace: ks,
			Key:      slices.Clone(key),
			Object:   rec.Object,
			Created:  time.Unix(0, rec.Created),
			Trace:    rec.Trace,
		}
		if err := fn(h); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: hints for %q: %w", target, err)
	}
	return nil
}

// DeleteHint removes the hint of (h.Target, h.Keyspace, h.Key) once it has
// been delivered, but only if the stored hint is still version.Equal to
// h.Object: a hint that an AddHint merged newer data into during delivery
// stays, to be delivered again. It returns only once the delete is synced;
// deleted=false (with a nil error) means there was nothing to delete or the
// hint had changed.
func (s *Store) DeleteHint(h Hint) (deleted bool, err error) {
	if err := validateHint(h.Target, h.Keyspace, h.Key); err != nil {
		return false, err
	}
	if err := s.acquire(); err != nil {
		return false, err
	}
	defer s.release()
	tok := placement.KeyToken(h.Key)
	k := hintKey(h.Target, h.Keyspace, tok, h.Key)
	l := s.stripe(tok)
	l.Lock()
	defer l.Unlock()

	cur, size, found, err := s.readHint(h.Target, h.Keyspace, h.Key, k)
	if err != nil || !found {
		return false, err
	}
	if !cur.owedBy(h.Object, false) {
		return false, nil
	}
	err = s.deleteSized(k, size-int64(len(k)))
	if err == nil {
		s.present.remove(k)
	}
	s.hints.settle(h.Target, 0, -size, -1, err == nil)
	if err != nil {
		if errors.Is(err, ErrFailed) {
			return false, err
		}
		return false, fmt.Errorf("store: delete hint for %q, keyspace %q key %s: %w", h.Target, h.Keyspace, printableKey(h.Key), err)
	}
	return true, nil
}

// owed returns what the reference hint of (ks, key) with clock ref owes
// its target: the key's stored object, read under the key's lock stripe.
// It returns nil when the store holds no object for the key any more (its
// tombstone was collected, which happens only once every replica held it):
// then the hint owes nothing.
func (s *Store) owed(ks string, key []byte, ref version.Vector) (*version.Object, error) {
	tok := placement.KeyToken(key)
	l := s.stripe(tok)
	l.RLock()
	obj, err := s.read(ks, tok, key, objectKey(ks, tok, key))
	l.RUnlock()
	if err != nil {
		return nil, err
	}
	if obj.IsEmpty() {
		return nil, nil
	}
	if !obj.Clock.Descends(ref) {
		s.log.errLogger().Error("store: a write-ahead hint owes writes its key's object lacks; delivering the object", "keyspace", ks, "key", printableKey(key), "hint_clock", ref, "object_clock", obj.Clock)
	}
	return obj, nil
}

// dropOrphans deletes the reference hints of hs whose key's object is no
// longer stored (owed returned nil): they owe nothing.
func (s *Store) dropOrphans(hs []Hint) (err error) {
	defer catchFatal(&err, s.fail)
	for _, h := range hs {
		tok := placement.KeyToken(h.Key)
		k := hintKey(h.Target, h.Keyspace, tok, h.Key)
		l := s.stripe(tok)
		l.Lock()
		err := func() error {
			cur, size, found, err := s.readHint(h.Target, h.Keyspace, h.Key, k)
			if err != nil || !found || cur.Ref == nil {
				return err
			}
			obj, err := s.read(h.Keyspace, tok, h.Key, objectKey(h.Keyspace, tok, h.Key))
			if err != nil || !obj.IsEmpty() {
				return err
			}
			err = s.deleteSized(k, size-int64(len(k)))
			if err == nil {
				s.present.remove(k)
			}
			s.hints.settle(h.Target, 0, -size, -1, err == nil)
			return err
		}()
		l.Unlock()
		if err != nil {
			return fmt.Errorf("store: drop a hint for %q, keyspace %q key %s whose object is gone: %w", h.Target, h.Keyspace, printableKey(h.Key), err)
		}
	}
	return nil
}

// deleteSized deletes k, whose value has valueLen bytes, with s.wo
// (fsynced). The size helps Pebble's compaction heuristics.
func (s *Store) deleteSized(k []byte, valueLen int64) (err error) {
	defer catchFatal(&err, s.fail)
	return s.db.DeleteSized(k, uint32(min(valueLen, 1<<32-1)), s.wo)
}

// expireChunk is how many hints ExpireHints deletes per synced batch.
const expireChunk = 128

// expiring is a hint ExpireHints found too old (or undecodable).
type expiring struct {
	k      []byte
	target string // "" when the key does not parse
	ks     string
	tok    uint64
}

// DroppedHint names a hint ExpireHintsFunc dropped: the write of a key of
// Keyspace at Token will not reach Target by handoff.
type DroppedHint struct {
	Target, Keyspace string
	Token            uint64
}

// ExpireHints deletes every hint created before now-maxAge (maxAge <= 0
// means DefaultHintMaxAge) and returns how many it dropped per target; the
// caller counts them as dropped (repair has to cover them). It reads only
// the hints' headers, not their objects. A hint whose header does not
// decode is dropped too, and logged: it could never be delivered, and
// would stop Hints at it until it aged out (as one whose object alone is
// damaged does). Deletes are synced in batches; ExpireHints holds the lock
// stripes of one batch at a time, so it must not be called from an Update
// fn.
func (s *Store) ExpireHints(now time.Time, maxAge time.Duration) (dropped map[string]int, err error) {
	return s.ExpireHintsFunc(now, maxAge, nil)
}

// ExpireHintsFunc is ExpireHints that also calls onDrop (if set) for every
// well-formed hint it dropped, after the deletion is durable — so the
// caller can mark the key's range for repair.
func (s *Store) ExpireHintsFunc(now time.Time, maxAge time.Duration, onDrop func(DroppedHint)) (dropped map[string]int, err error) {
	if maxAge <= 0 {
		maxAge = DefaultHintMaxAge
	}
	cutoff := now.Add(-maxAge).UnixNano()
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	found, err := s.findExpired(cutoff)
	if err != nil {
		return nil, err
	}
	dropped = map[string]int{}
	for chunk := range slices.Chunk(found, expireChunk) {
		gone, err := s.expire(chunk, cutoff, dropped)
		if err != nil {
			return dropped, err
		}
		if onDrop != nil {
			for _, d := range gone {
				onDrop(d) // outside the lock stripes expire held
			}
		}
	}
	return dropped, nil
}

// expired reports whether the hint value v, stored under Pebble key k, is
// to be dropped at cutoff: it is too old, or it does not open or its
// header does not decode (cause says why). A hint sealed under a key the
// keyring lacks is kept (its age cannot be read, and it is not damaged):
// keep is then the error saying so.
func (s *Store) expired(k, v []byte, cutoff int64) (drop bool, cause, keep error) {
	p, err := s.open(k, v)
	if errors.Is(err, ErrUnknownKey) {
		return false, nil, err
	}
	if err != nil {
		return true, err, nil
	}
	h, err := decodeHintHeader(p)
	if err != nil {
		return true, err, nil
	}
	return h.Created < cutoff, nil, nil
}

// findExpired lists the hints to drop at cutoff, from one iterator.
func (s *Store) findExpired(cutoff int64) (found []expiring, err error) {
	defer catchFatal(&err, s.fail)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindHint}, UpperBound: []byte{kindHint + 1}})
	if err != nil {
		return nil, fmt.Errorf("store: expire hints: %w", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: expire hints: %w", cerr)
		}
	}()
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("store: expire hints: %w", err)
		}
		drop, cause, keep := s.expired(k, v, cutoff)
		if keep != nil {
			s.log.errLogger().Error("store: keeping a hint that cannot be opened", "key", printableKey(k), "err", keep)
		}
		if !drop {
			continue
		}
		e := expiring{k: slices.Clone(k)}
		target, n, err := hintKeyTarget(k)
		if err == nil {
			e.target = target
			var tok uint64
			var ks string
			if ks, tok, _, err = splitHintKey(k, n); err == nil {
				e.ks, e.tok = ks, tok
			}
		}
		if cause = errors.Join(cause, err); cause != nil {
			s.log.errLogger().Error("store: dropping a corrupt hint", "key", printableKey(k), "err", cause)
		}
		found = append(found, e)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("store: expire hints: %w", err)
	}
	return found, nil
}

// expire deletes the hints of chunk that are still to be dropped, in one
// synced batch, holding their lock stripes (taken in ascending order, so
// two ExpireHints cannot deadlock; every other call holds one stripe at a
// time).
func (s *Store) expire(chunk []expiring, cutoff int64, dropped map[string]int) (gone []DroppedHint, err error) {
	defer catchFatal(&err, s.fail)
	toks := make([]uint64, len(chunk))
	for i, e := range chunk {
		toks[i] = e.tok
	}
	defer s.lockAll(toks)()

	b := s.db.NewBatch()
	defer b.Close()
	type change struct {
		target string
		size   int64
	}
	var changes []change
	var deleted [][]byte
	for _, e := range chunk {
		v, closer, err := s.db.Get(e.k)
		if errors.Is(err, pebble.ErrNotFound) {
			continue // delivered meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("store: expire hints: %w", err)
		}
		drop, _, _ := s.expired(e.k, v, cutoff)
		size := int64(len(e.k) + len(v))
		closer.Close()
		if !drop {
			continue
		}
		if err := b.DeleteSized(e.k, uint32(min(size-int64(len(e.k)), 1<<32-1)), nil); err != nil {
			return nil, fmt.Errorf("store: expire hints: %w", err)
		}
		deleted = append(deleted, e.k)
		if e.target != "" {
			changes = append(changes, change{e.target, size})
			if e.ks != "" {
				gone = append(gone, DroppedHint{Target: e.target, Keyspace: e.ks, Token: e.tok})
			}
		}
	}
	if b.Empty() {
		return nil, nil
	}
	if err := b.Commit(s.wo); err != nil {
		return nil, fmt.Errorf("store: expire hints: %w", err)
	}
	for _, k := range deleted {
		s.present.remove(k)
	}
	for _, c := range changes {
		s.hints.settle(c.target, 0, -c.size, -1, true)
		dropped[c.target]++
	}
	return gone, nil
}

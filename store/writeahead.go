package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/version"
)

// Queue names the replicas a write has not reached yet: UpdateQueued
// queues the object it writes as a hint for each of them, in the object's
// own synced batch (write-ahead hints).
type Queue struct {
	// Targets are the node ids of the key's other replicas.
	Targets []string
	// Trace is the W3C trace id and span id (16 + 8 bytes) of the write,
	// or nil; a new hint keeps it, so its delivery links to the write.
	Trace []byte
	// Now stamps the creation of new hints (their age, for expiry).
	Now time.Time
	// Limits bound the hints kept per target; only MaxBytesPerTarget is
	// looked at here.
	Limits HintLimits
	// Applied, if set, is called with the new object once its batch (the
	// object and its hints) is in the write-ahead log and the memtable,
	// before the log's sync is waited for: the caller may send the object
	// to the other replicas while it syncs here. UpdateQueued still
	// returns only once the batch is synced, and the key's readers and
	// writers wait until then, so nothing reads a write this node could
	// still lose. Applied must not block. It is called only for a write
	// with Targets (one that queues hints), never when fn changes
	// nothing.
	Applied func(next *version.Object)
}

// validate checks q (nil is valid: nothing to queue).
func (q *Queue) validate() error {
	if q == nil {
		return nil
	}
	if slices.Contains(q.Targets, "") {
		return ErrEmptyTarget
	}
	if len(q.Trace) != 0 && len(q.Trace) != traceIDLen {
		return fmt.Errorf("store: hint trace reference of %d bytes (a W3C trace id and span id make %d, or pass nil)", len(q.Trace), traceIDLen)
	}
	if len(q.Targets) > 0 && !q.Now.After(time.Unix(0, 0)) {
		return fmt.Errorf("store: hint creation time %v is not after 1970 (pass the current time)", q.Now)
	}
	return q.Limits.Validate()
}

// UpdateQueued is Update that also queues the object it writes as a hint
// for each of q.Targets, in the same synced batch as the object: when it
// returns, the write is on disk here AND durably queued for every other
// replica, so no crash of this process after it returned can keep the
// write from them. A hint already held for a target and key is merged
// into, as AddHint does (it keeps its creation time and trace).
//
// A target whose hint would take its pending bytes past
// q.Limits.MaxBytesPerTarget gets none and is returned in dropped: the
// caller has to make repair cover it. Nothing is written or queued when fn
// changes nothing (changed=false). As the replicas acknowledge, the caller
// removes their hints with ClearHints; what is left is delivered by
// hinted handoff.
func (s *Store) UpdateQueued(ks string, key []byte, fn func(cur *version.Object) (*version.Object, error), q Queue) (obj *version.Object, changed bool, dropped []string, err error) {
	return s.update(ks, key, fn, &q)
}

// writeQueued stores v (the sealed encoding of next) under k, with its tombstone index change and a hint of next for
// each of q's targets, in one synced batch. The caller holds the key's
// lock stripe, which is also the stripe of the key's hints.
func (s *Store) writeQueued(ks string, tok uint64, key, k, v []byte, cur, next *version.Object, q *Queue) (dropped []string, err error) {
	defer catchFatal(&err, s.fail)
	lim := q.Limits.withDefaults()
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.stageObject(b, ks, tok, key, k, v, cur, next); err != nil {
		return nil, err
	}
	type staged struct {
		target          string
		k               []byte
		reserved, delta int64
		count           int
		// stored is the value written, when it holds exactly next.
		stored []byte
	}
	var hints []staged
	committed := false
	defer func() {
		for _, h := range hints {
			if h.count > 0 && !committed {
				s.present.remove(h.k)
			}
			s.hints.settle(h.target, h.reserved, h.delta, h.count, committed)
			switch {
			case committed && h.stored != nil:
				s.receipts.add(h.k, next, h.stored)
			default:
				s.receipts.forget(h.k)
			}
		}
	}()
	var fresh []byte // a new hint of next: shared by every target that holds none
	var seen []string
	for _, t := range q.Targets {
		if slices.Contains(seen, t) {
			continue
		}
		seen = append(seen, t)
		hk := hintKey(t, ks, tok, key)
		old, oldSize, found, err := s.readHint(t, ks, key, hk)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		var hv []byte  // unsealed
		exact := false // hv owes exactly next
		count := 1
		switch {
		case err != nil:
			// A record that does not decode could never be delivered:
			// the new hint replaces it.
			s.log.errLogger().Error("store: replacing a corrupt hint record", "target", t, "keyspace", ks, "key", printableKey(key), "err", err)
			count = 0
		case found && old.Ref != nil:
			// A reference hint already owes the stored object; it now
			// owes next's writes too.
			clock := old.Ref.Join(next.Clock)
			if clock.Equal(old.Ref) {
				continue
			}
			hv = encodeHintRef(old.Created, old.Trace, clock)
			exact, count = clock.Equal(next.Clock), 0
		case found:
			merged := version.Merge(old.Object, next)
			if version.Equal(merged, old.Object) {
				continue // the hint already holds the write
			}
			if hv, err = encodeHint(&hintRecord{Created: old.Created, Trace: old.Trace, Object: merged}); err != nil {
				return nil, err
			}
			count = 0
		}
		if hv == nil {
			if fresh == nil {
				// A reference to the object this batch stores, not a
				// copy of it (hintFormatRef).
				fresh = encodeHintRef(q.Now.UnixNano(), q.Trace, next.Clock)
			}
			hv, exact = fresh, true
		}
		// Sealed per target: the Pebble key is part of what is
		// authenticated.
		if hv, err = s.seal(hk, hv); err != nil {
			return nil, err
		}
		delta := int64(len(hk)+len(hv)) - oldSize
		reserved, ok := s.hints.reserve(t, delta, lim.MaxBytesPerTarget)
		if !ok {
			dropped = append(dropped, t)
			continue
		}
		h := staged{target: t, k: hk, reserved: reserved, delta: delta, count: count}
		if exact {
			h.stored = hv
		}
		hints = append(hints, h)
		if count > 0 {
			s.present.add(hk) // counted before the batch commits
		}
		if err := b.Set(hk, hv, nil); err != nil {
			return nil, err
		}
	}
	if err := s.commitQueued(b, next, q.Applied); err != nil {
		return nil, err
	}
	committed = true
	return dropped, nil
}

// commitQueued commits b, synced, calling applied (if set) between the
// batch's apply and the wait for its sync. A failed sync fails the store
// (the caller recovers the fatal error, catchFatal).
func (s *Store) commitQueued(b *pebble.Batch, next *version.Object, applied func(*version.Object)) error {
	if applied == nil || !s.wo.Sync {
		return b.Commit(s.wo)
	}
	if err := s.db.ApplyNoSyncWait(b, s.wo); err != nil {
		return err
	}
	applied(next)
	if err := b.SyncWait(); err != nil {
		// DB.Apply treats a failed commit as fatal; a commit whose sync is
		// waited for apart is told only here. The log may have lost this
		// batch and those after it: the store fails as it would have.
		s.log.Fatalf("pebble: fatal commit error: %v", err)
	}
	return nil
}

// ClearHints removes the hints of (ks, key) held for targets that obj
// covers (version.Descends(obj, hint)): each of targets acknowledged a
// synced merge of obj, so it holds everything such a hint would bring. A
// hint that newer data was merged into meanwhile stays, to be delivered.
// The deletes are one batch, not synced: a delete lost in a crash only
// means the hint is delivered again, and delivery merges (the target then
// writes nothing). It returns how many hints it removed.
func (s *Store) ClearHints(ks string, key []byte, obj *version.Object, targets []string) (cleared int, err error) {
	if err := validate(ks, key); err != nil {
		return 0, err
	}
	if slices.Contains(targets, "") {
		return 0, ErrEmptyTarget
	}
	if obj.IsEmpty() || len(targets) == 0 {
		return 0, nil
	}
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	tok := placement.KeyToken(key)
	l := s.stripe(tok)
	l.Lock()
	defer l.Unlock()
	return s.clearHints(ks, tok, key, obj, targets)
}

func (s *Store) clearHints(ks string, tok uint64, key []byte, obj *version.Object, targets []string) (cleared int, err error) {
	defer catchFatal(&err, s.fail)
	// A hint that still holds exactly obj — the common case: the write's
	// own hint — is told by its bytes: those UpdateQueued wrote (a
	// receipt), else those of obj's encoding, without decoding the object.
	var enc []byte
	b := s.db.NewBatch()
	defer b.Close()
	type gone struct {
		target string
		k      []byte
		size   int64
	}
	var del []gone
	for _, t := range targets {
		if slices.ContainsFunc(del, func(g gone) bool { return g.target == t }) {
			continue
		}
		hk := hintKey(t, ks, tok, key)
		covered, size, err := s.ownHint(hk, obj)
		if err == nil && !covered && size == 0 {
			covered, size, err = s.hintCovered(hk, obj, &enc)
		}
		if err != nil {
			return 0, fmt.Errorf("store: clear hints of keyspace %q key %s: %w", ks, printableKey(key), err)
		}
		if !covered {
			continue
		}
		if err := b.DeleteSized(hk, uint32(min(size-int64(len(hk)), 1<<32-1)), nil); err != nil {
			return 0, fmt.Errorf("store: clear hints of keyspace %q key %s: %w", ks, printableKey(key), err)
		}
		del = append(del, gone{t, hk, size})
	}
	if len(del) == 0 {
		return 0, nil
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, fmt.Errorf("store: clear hints of keyspace %q key %s: %w", ks, printableKey(key), err)
	}
	for _, g := range del {
		s.present.remove(g.k)
		s.hints.settle(g.target, 0, -g.size, -1, true)
	}
	return len(del), nil
}

// ownHint reports whether the hint stored under hk is the one UpdateQueued
// wrote holding exactly obj, and then its size; size 0 means it could not
// tell (no receipt, or the hint changed since), for hintCovered to decide.
func (s *Store) ownHint(hk []byte, obj *version.Object) (own bool, size int64, err error) {
	stored, ok := s.receipts.take(hk, obj)
	if !ok {
		return false, 0, nil
	}
	v, closer, err := s.getHint(hk)
	if v == nil || err != nil {
		return false, 0, err
	}
	defer closer.Close()
	if !bytes.Equal(v, stored) {
		return false, 0, nil
	}
	return true, int64(len(hk) + len(v)), nil
}

// getHint returns the stored value of hint key hk, to be released with
// closer; nil when there is none.
func (s *Store) getHint(hk []byte) (v []byte, closer io.Closer, err error) {
	if !s.present.maybe(hk) {
		return nil, nil, nil
	}
	v, closer, err = s.db.Get(hk)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if v == nil {
		v = []byte{} // an empty value is still a hint
	}
	return v, closer, nil
}

// hintCovered reports whether the hint stored under hk owes its target
// nothing obj does not hold, and its size. *enc is obj's encoding,
// made here when first needed. No hint, or one that does not decode (left
// to ExpireHints, which logs it), is not covered.
func (s *Store) hintCovered(hk []byte, obj *version.Object, enc *[]byte) (covered bool, size int64, err error) {
	v, closer, err := s.getHint(hk)
	if v == nil || err != nil {
		return false, 0, err
	}
	defer closer.Close()
	size = int64(len(hk) + len(v))
	p, err := s.open(hk, v)
	if err != nil {
		return false, size, nil // left to delivery or ExpireHints, which report it
	}
	h, err := decodeHintHeader(p)
	if err != nil {
		return false, size, nil
	}
	if !h.ref {
		if *enc == nil {
			*enc = version.AppendObject(nil, obj)
		}
		if bytes.Equal(h.Object, *enc) {
			return true, size, nil
		}
	}
	rec, err := decodeHint(p)
	if err != nil {
		return false, size, nil
	}
	return rec.owedBy(obj, true), size, nil
}

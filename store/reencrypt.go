package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// ReencryptBatch is how many records Reencrypt rewrites per synced batch
// (and holds the lock stripes of at once).
const ReencryptBatch = 128

// ReencryptStats count what Reencrypt did.
type ReencryptStats struct {
	// Active is the key id the rewritten values are now sealed under.
	Active string
	// Rewritten is how many values were sealed anew under Active.
	Rewritten int64
	// Current is how many values already were.
	Current int64
	// ByKey counts the rewritten values by the key id they were sealed
	// under before; "" counts values that were not sealed (written before
	// encryption was turned on).
	ByKey map[string]int64
	// Unreadable counts values sealed under a key the keyring lacks (they
	// are left as they are), and damaged values; Reencrypt logs each.
	Unreadable int64
}

// staleRecord is a record Reencrypt found sealed under another key.
type staleRecord struct {
	k      []byte
	tok    uint64
	target string // for a hint: its target; "" for an object
}

// Reencrypt rewrites every object and hint that is not sealed under the
// keyring's active key (sealed under an older key, or not sealed at all)
// so that it is, and reports the counts. It is what makes an old key safe
// to remove from the key file. Records are rewritten ReencryptBatch at a
// time, each batch under the lock stripes of its keys (as Update takes
// them) and re-read under them, so a write that lands meanwhile is never
// lost, and writes to those keys wait for one batch at most. Writes made
// during the run are sealed under the active key already. A record that
// cannot be opened is counted as Unreadable, logged and left alone.
//
// Reencrypt returns ErrNoKeyring when the store has no keyring; it stops
// at ctx's end with ctx's error and the counts so far (run it again to
// finish: records done are then Current).
func (s *Store) Reencrypt(ctx context.Context) (st ReencryptStats, err error) {
	kr := s.keys.Load()
	if kr == nil {
		return st, ErrNoKeyring
	}
	st.Active = kr.Active()
	st.ByKey = map[string]int64{}
	if err := s.acquire(); err != nil {
		return st, err
	}
	defer s.release()
	for _, kind := range []byte{kindObject, kindHint} {
		if err := s.reencryptKind(ctx, kind, kr, &st); err != nil {
			return st, err
		}
	}
	return st, nil
}

// reencryptKind rewrites the stale records of one kind, a batch at a time.
// Each batch is found by an iterator of its own, closed before the batch
// is rewritten, so a long run pins no old memtables or sstables.
func (s *Store) reencryptKind(ctx context.Context, kind byte, kr *Keyring, st *ReencryptStats) error {
	from := []byte{kind}
	for from != nil {
		batch, next, err := s.findStale(kind, from, kr, st)
		if err != nil {
			return err
		}
		if err := s.reencryptBatch(ctx, batch, kr, st); err != nil {
			return err
		}
		from = next
	}
	return nil
}

// findStale collects, from Pebble key from on, up to ReencryptBatch
// records of kind not sealed under kr's active key; next is where the
// following batch starts, nil at the end of the kind's records.
func (s *Store) findStale(kind byte, from []byte, kr *Keyring, st *ReencryptStats) (batch []staleRecord, next []byte, err error) {
	defer catchFatal(&err, s.fail)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: from, UpperBound: []byte{kind + 1}})
	if err != nil {
		return nil, nil, fmt.Errorf("store: reencrypt: %w", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: reencrypt: %w", cerr)
		}
	}()
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, nil, fmt.Errorf("store: reencrypt: %w", err)
		}
		if id, _, sealed, _ := sealedKeyID(v); sealed && id == kr.Active() {
			st.Current++
			continue
		}
		rec, err := recordToken(kind, it.Key())
		if err != nil {
			st.Unreadable++
			s.log.errLogger().Error("store: reencrypt: skipping a record whose key does not parse", "key", printableKey(it.Key()), "err", err)
			continue
		}
		batch = append(batch, rec)
		if len(batch) == ReencryptBatch {
			// The smallest key after this one.
			return batch, append(slices.Clone(it.Key()), 0), nil
		}
	}
	if err := it.Error(); err != nil {
		return nil, nil, fmt.Errorf("store: reencrypt: %w", err)
	}
	return batch, nil, nil
}

// recordToken parses the ring token (and, for a hint, the target) of the
// Pebble key k of an object or hint.
func recordToken(kind byte, k []byte) (staleRecord, error) {
	rec := staleRecord{k: slices.Clone(k)}
	switch kind {
	case kindObject:
		_, rest, ok := lengthPrefixed(k[1:])
		if !ok || len(rest) < tokenLen {
			return rec, errors.New("malformed object key")
		}
		rec.tok = binary.BigEndian.Uint64(rest)
	case kindHint:
		target, n, err := hintKeyTarget(k)
		if err != nil {
			return rec, err
		}
		_, tok, _, err := splitHintKey(k, n)
		if err != nil {
			return rec, err
		}
		rec.target, rec.tok = target, tok
	}
	return rec, nil
}

// reencryptBatch rewrites the records of batch that are still stale, in
// one synced batch, holding their lock stripes.
func (s *Store) reencryptBatch(ctx context.Context, batch []staleRecord, kr *Keyring, st *ReencryptStats) (err error) {
	if len(batch) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	defer catchFatal(&err, s.fail)
	toks := make([]uint64, len(batch))
	for i, r := range batch {
		toks[i] = r.tok
	}
	defer s.lockAll(toks)()

	b := s.db.NewBatch()
	defer b.Close()
	type growth struct {
		target string
		delta  int64
	}
	var grown []growth
	byKey := map[string]int64{}
	for _, r := range batch {
		v, closer, err := s.db.Get(r.k)
		if errors.Is(err, pebble.ErrNotFound) {
			continue // a hint delivered meanwhile
		}
		if err != nil {
			return fmt.Errorf("store: reencrypt: %w", err)
		}
		id, _, sealed, _ := sealedKeyID(v)
		if sealed && id == kr.Active() {
			closer.Close()
			st.Current++ // rewritten by a write meanwhile
			continue
		}
		plain, err := kr.open(r.k, v)
		var nv []byte
		if err == nil {
			nv, err = kr.seal(r.k, plain)
		}
		oldLen := len(v)
		closer.Close()
		if err != nil {
			st.Unreadable++
			s.log.errLogger().Error("store: reencrypt: leaving a value that cannot be opened", "key", printableKey(r.k), "err", err)
			continue
		}
		if err := b.Set(r.k, nv, nil); err != nil {
			return fmt.Errorf("store: reencrypt: %w", err)
		}
		byKey[id]++
		if r.target != "" {
			grown = append(grown, growth{r.target, int64(len(nv) - oldLen)})
		}
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(s.wo); err != nil {
		if errors.Is(err, ErrFailed) {
			return err
		}
		return fmt.Errorf("store: reencrypt: %w", err)
	}
	for id, n := range byKey {
		st.ByKey[id] += n
		st.Rewritten += n
	}
	for _, g := range grown {
		s.hints.settle(g.target, 0, g.delta, 0, true)
	}
	return s.stillHome()
}

package store

import (
	"errors"
	"fmt"

	"github.com/meridian-kv/meridian/placement"
)

// MaxDeleteHints bounds the hints of one DeleteHints call.
const MaxDeleteHints = MaxMergeBatch

// DeleteHints is DeleteHint for many delivered hints at once: each hint is
// removed only if the stored hint is still version.Equal to the one given
// (a hint that an AddHint merged newer data into during delivery stays, to
// be delivered again), and every removal is written in one synced batch —
// one fsync for the lot, which is what delivering many hints a second
// needs. It returns how many hints it removed; on error none is
// acknowledged. The hints may belong to different targets and keyspaces.
//
// DeleteHints holds the lock stripes of all the hints at once (taken in
// ascending order, as MergeMany and ExpireHints do), so it must not be
// called from an Update fn.
func (s *Store) DeleteHints(hints []Hint) (deleted int, err error) {
	if len(hints) > MaxDeleteHints {
		return 0, fmt.Errorf("store: delete of %d hints exceeds %d per batch (split the call)", len(hints), MaxDeleteHints)
	}
	for _, h := range hints {
		if err := validateHint(h.Target, h.Keyspace, h.Key); err != nil {
			return 0, err
		}
	}
	if len(hints) == 0 {
		return 0, nil
	}
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	defer catchFatal(&err, s.fail)

	keys := make([][]byte, len(hints))
	toks := make([]uint64, len(hints))
	for i, h := range hints {
		toks[i] = placement.KeyToken(h.Key)
		keys[i] = hintKey(h.Target, h.Keyspace, toks[i], h.Key)
	}
	defer s.lockAll(toks)()

	b := s.db.NewBatch()
	defer b.Close()
	type change struct {
		target string
		k      []byte
		size   int64
	}
	var changes []change
	staged := map[string]bool{}
	for i, h := range hints {
		k := keys[i]
		if staged[string(k)] {
			continue // the same hint twice: deleted once
		}
		cur, size, found, err := s.readHint(h.Target, h.Keyspace, h.Key, k)
		if err != nil {
			return 0, err
		}
		if !found || !cur.owedBy(h.Object, false) {
			continue
		}
		if err := b.DeleteSized(k, uint32(min(size-int64(len(k)), 1<<32-1)), nil); err != nil {
			return 0, fmt.Errorf("store: delete hints: %w", err)
		}
		staged[string(k)] = true
		changes = append(changes, change{h.Target, k, size})
	}
	if len(changes) == 0 {
		return 0, nil
	}
	if err := b.Commit(s.wo); err != nil {
		if errors.Is(err, ErrFailed) {
			return 0, err
		}
		return 0, fmt.Errorf("store: delete %d delivered hints: %w", len(changes), err)
	}
	for _, c := range changes {
		s.present.remove(c.k)
		s.hints.settle(c.target, 0, -c.size, -1, true)
	}
	return len(changes), nil
}

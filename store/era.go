package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/cockroachdb/pebble/v2"
)

// A store's era counts the times it was opened after it had not been
// closed cleanly: a crash, a kill, a power cut, a fatal storage error.
//
// A node sends a write to the other replicas while its own copy syncs
// (Queue.Applied). If it dies before that sync, it may come back without
// the write while other replicas hold it, under a dot it minted from the
// key's clock. Minting from the same clock again would give a different
// write the same dot, and the replicas would take one for the other. So
// the actor that mints dots (Actor) is the directory's incarnation and its
// era: after an unclean stop every dot is another actor's, as after a
// replaced disk, and the dots of the earlier era stay valid as theirs.
// A clean Close has every acknowledged write synced and keeps the era.
var (
	// eraKey holds the era (8 bytes, big endian); absent means 0.
	eraKey = []byte{kindMeta, 'e', 'r', 'a'}
	// openKey is present while the store is open: Open finds it only
	// when the store was not closed cleanly.
	openKey = []byte{kindMeta, 'o', 'p', 'e', 'n'}
)

// startEra reads the era, begins the next one if the store was not closed
// cleanly, and marks the store open, synced.
func (s *Store) startEra() (err error) {
	defer catchFatal(&err, s.fail)
	era, err := s.readEra()
	if err != nil {
		return err
	}
	_, closer, err := s.db.Get(openKey)
	switch {
	case err == nil:
		closer.Close()
		era++ // the last run did not end with Close
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("read open mark: %w", err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if era > 0 {
		if err := b.Set(eraKey, binary.BigEndian.AppendUint64(nil, era), nil); err != nil {
			return err
		}
	}
	if err := b.Set(openKey, nil, nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("mark the store open: %w", err)
	}
	s.era = era
	return nil
}

func (s *Store) readEra() (uint64, error) {
	v, closer, err := s.db.Get(eraKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read era: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("era of %d bytes, want 8", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// endEra marks the store closed cleanly, synced; the next Open keeps the
// era. A failed store keeps its mark: what it acknowledged may not be on
// disk.
func (s *Store) endEra() error {
	if s.failed.Load() != nil {
		return nil
	}
	if err := s.db.Delete(openKey, pebble.Sync); err != nil {
		return fmt.Errorf("store: mark the store closed: %w", err)
	}
	return nil
}

// Era returns the number of times this store was opened after an unclean
// stop.
func (s *Store) Era() uint64 { return s.era }

// Actor is the version-vector actor that mints this node's dots: the
// directory's incarnation (Identity.Actor), and after the first unclean
// stop its era, "node@incarnation.era".
func (s *Store) Actor() string {
	if s.era == 0 {
		return s.id.Actor()
	}
	return s.id.Actor() + "." + strconv.FormatUint(s.era, 10)
}

package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/version"
)

// Tombstones. An object whose siblings are all deletions is a tombstone:
// it must stay until every replica has it, or a replica that missed the
// delete could copy the old value back (repair merges; it cannot tell a
// value nobody deleted from one whose tombstone is gone). The store keeps
// an index of its tombstones, kind 't', keyed like objects, whose value is
// the local time the tombstone (in its current version) arrived, so the
// node can decide when to collect one by its own clock only. The index
// entry is written in the same synced batch as the object.
//
// Collecting a tombstone forgets the key's clock. Dots a replica mints are
// max(clock[actor])+1, so a later write of the key would reuse counters
// the forgotten tombstone covered, and a replica still holding that
// tombstone would discard the new value as already superseded. The store
// therefore keeps a dot floor, the largest counter of any clock it ever
// collected, and writers start a key with no object above it (DotFloor).

// dotFloorKey holds the dot floor (8 bytes, big endian).
var dotFloorKey = []byte{kindMeta, 'd', 'o', 't', 'f', 'l', 'o', 'o', 'r'}

// IsTombstone reports whether o holds siblings and all are deletions.
func IsTombstone(o *version.Object) bool {
	if o == nil || len(o.Siblings) == 0 {
		return false
	}
	for _, s := range o.Siblings {
		if !s.Deleted {
			return false
		}
	}
	return true
}

func tombstoneKey(ks string, tok uint64, key []byte) []byte {
	p := keyspacePrefix(kindTombstone, ks)
	out := make([]byte, 0, len(p)+tokenLen+len(key))
	out = append(out, p...)
	out = binary.BigEndian.AppendUint64(out, tok)
	return append(out, key...)
}

func encodeArrival(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano()))
}

func decodeArrival(v []byte) (time.Time, error) {
	if len(v) != 8 {
		return time.Time{}, fmt.Errorf("tombstone index value of %d bytes, want 8", len(v))
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))), nil
}

// stageObject adds to b the write of v (the encoding of next) under Pebble
// key k, with the tombstone index change that goes from cur to next: every
// batched object write goes through it, so the index never drifts from the
// objects.
func (s *Store) stageObject(b *pebble.Batch, ks string, tok uint64, key, k, v []byte, cur, next *version.Object) error {
	if err := b.Set(k, v, nil); err != nil {
		return err
	}
	return s.indexTombstone(b, ks, tok, key, cur, next)
}

// indexTombstone adds to b what keeps the tombstone index in step with a
// write of next over cur: a changed tombstone gets a new arrival time, and
// a key that is no longer a tombstone leaves the index.
func (s *Store) indexTombstone(b *pebble.Batch, ks string, tok uint64, key []byte, cur, next *version.Object) error {
	switch {
	case IsTombstone(next):
		return b.Set(tombstoneKey(ks, tok, key), encodeArrival(s.now()), nil)
	case IsTombstone(cur):
		return b.Delete(tombstoneKey(ks, tok, key), nil)
	}
	return nil
}

// DotFloor returns the largest counter of any clock the store collected
// with a tombstone; a writer minting the first dot of a key that has no
// object must go above it.
func (s *Store) DotFloor() uint64 { return s.dotFloor.Load() }

func (s *Store) loadDotFloor() (err error) {
	defer catchFatal(&err, s.fail)
	v, closer, err := s.db.Get(dotFloorKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read dot floor: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return fmt.Errorf("dot floor of %d bytes, want 8", len(v))
	}
	s.dotFloor.Store(binary.BigEndian.Uint64(v))
	return nil
}

// Tombstones calls fn for each tombstone of keyspace ks, in token order,
// with the local time its current version arrived. fn may call
// CollectTombstone; an error from fn stops the scan and is returned as is.
func (s *Store) Tombstones(ks string, fn func(tok uint64, key []byte, arrived time.Time) error) (err error) {
	if ks == "" {
		return ErrEmptyKeyspace
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	defer catchFatal(&err, s.fail)
	prefix := keyspacePrefix(kindTombstone, ks)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("store: scan tombstones of %q: %w", ks, err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: scan tombstones of %q: %w", ks, cerr)
		}
	}()
	for valid := it.First(); valid; valid = it.Next() {
		tok, k, err := splitObjectKey(it.Key(), len(prefix))
		if err != nil {
			return corrupt(ks, it.Key(), err)
		}
		at, err := decodeArrival(it.Value())
		if err != nil {
			return corrupt(ks, k, err)
		}
		if err := fn(tok, append([]byte(nil), k...), at); err != nil {
			return err
		}
	}
	return nil
}

// CollectTombstone deletes the tombstone of key if it is still the one
// that arrived at arrived (Tombstones reported it), raising the dot floor
// to its clock in the same synced batch. It reports whether it deleted
// anything: a key written since is left alone.
func (s *Store) CollectTombstone(ks string, key []byte, arrived time.Time) (collected bool, err error) {
	if err := validate(ks, key); err != nil {
		return false, err
	}
	if err := s.acquire(); err != nil {
		return false, err
	}
	defer s.release()
	tok := placement.KeyToken(key)
	l := s.stripe(tok)
	l.Lock()
	defer l.Unlock()
	defer catchFatal(&err, s.fail)

	tk := tombstoneKey(ks, tok, key)
	v, closer, err := s.db.Get(tk)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: read tombstone index of %s: %w", printableKey(key), err)
	}
	at, derr := decodeArrival(v)
	closer.Close()
	if derr != nil {
		return false, corrupt(ks, key, derr)
	}
	if !at.Equal(arrived) {
		return false, nil
	}
	ok := objectKey(ks, tok, key)
	obj, err := s.read(ks, tok, key, ok)
	if err != nil {
		return false, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Delete(tk, nil); err != nil {
		return false, err
	}
	if !IsTombstone(obj) {
		// The index outlived its tombstone (it cannot, as both change in
		// one batch, but an index entry must never delete a value).
		return false, b.Commit(s.wo)
	}
	if err := b.Delete(ok, nil); err != nil {
		return false, err
	}
	s.rows.drop(tok, ok)
	floor := s.dotFloor.Load()
	for _, c := range obj.Clock {
		floor = max(floor, c)
	}
	if err := b.Set(dotFloorKey, binary.BigEndian.AppendUint64(nil, floor), nil); err != nil {
		return false, err
	}
	if err := b.Commit(s.wo); err != nil {
		return false, fmt.Errorf("store: collect tombstone of %s: %w", printableKey(key), err)
	}
	s.dotFloor.Store(floor)
	return true, nil
}

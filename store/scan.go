package store

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/meridian-kv/meridian/version"
)

// Scan calls fn for every key of keyspace ks whose ring token t satisfies
// from <= t < to, where to == 0 means up to and including the end of the
// ring, in token order (keys with equal tokens in byte order). The scan is
// one Pebble iterator, so it sees one consistent point-in-time state; it
// does not wait for Updates in flight and may see writes whose fsync has
// not completed yet.
//
// A range that wraps around the ring (from > to != 0) is refused with
// ErrWrappedRange; from == to != 0 is empty. fn may keep key and obj, and
// may call the Store (Update included). An error from fn stops the scan
// and is returned as is.
func (s *Store) Scan(ks string, from, to uint64, fn func(token uint64, key []byte, obj *version.Object) error) (err error) {
	if ks == "" {
		return ErrEmptyKeyspace
	}
	if to != 0 && from > to {
		return fmt.Errorf("%w: [%d, %d)", ErrWrappedRange, from, to)
	}
	if to != 0 && from == to {
		return nil
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	defer catchFatal(&err, s.fail)

	prefix := keyspacePrefix(kindObject, ks)
	lower := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), from)
	var upper []byte
	if to == 0 {
		upper = prefixEnd(prefix)
	} else {
		upper = binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), to)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("store: scan keyspace %q: %w", ks, err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: scan keyspace %q: %w", ks, cerr)
		}
	}()
	for valid := it.First(); valid; valid = it.Next() {
		tok, k, err := splitObjectKey(it.Key(), len(prefix))
		if err != nil {
			return corrupt(ks, it.Key(), err)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("store: scan keyspace %q key %s: %w", ks, printableKey(k), err)
		}
		obj, _, err := s.openObject(ks, k, it.Key(), v)
		if err != nil {
			return err
		}
		if err := fn(tok, append([]byte(nil), k...), obj); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: scan keyspace %q: %w", ks, err)
	}
	return nil
}

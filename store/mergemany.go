package store

import (
	"errors"
	"fmt"

	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/version"
)

// KeyObject is one key and an object to merge into it.
type KeyObject struct {
	Key    []byte
	Object *version.Object
}

// MaxMergeBatch bounds the keys of one MergeMany call.
const MaxMergeBatch = 4096

// MergeMany merges each object into its key's stored object
// (version.Merge), as Merge does, but writes every change in one synced
// batch: one fsync for all of them, which is what repair and handoff,
// moving many keys at once, need to stay out of the foreground's way. It
// returns how many keys changed. Either every change is durable or, on
// error, none is acknowledged. A key may appear more than once; its
// objects all merge.
func (s *Store) MergeMany(ks string, items []KeyObject) (changed int, err error) {
	if len(items) > MaxMergeBatch {
		return 0, fmt.Errorf("store: merge of %d keys exceeds %d per batch", len(items), MaxMergeBatch)
	}
	for _, it := range items {
		if err := validate(ks, it.Key); err != nil {
			return 0, err
		}
	}
	if len(items) == 0 {
		return 0, nil
	}
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	defer catchFatal(&err, s.fail)

	// Lock every stripe involved, in ascending order, so two batches (and
	// single-key calls, which take one stripe) cannot deadlock.
	toks := make([]uint64, len(items))
	for i, it := range items {
		toks[i] = placement.KeyToken(it.Key)
	}
	defer s.lockAll(toks)()

	type state struct {
		tok       uint64
		key       []byte
		cur, next *version.Object
		// k and plain are the Pebble key and new encoding of a changed
		// object, cached once the batch is durable.
		k, plain []byte
	}
	byKey := map[string]*state{}
	var order []*state
	for i, it := range items {
		st, ok := byKey[string(it.Key)]
		if !ok {
			cur, err := s.read(ks, toks[i], it.Key, objectKey(ks, toks[i], it.Key))
			if err != nil {
				return 0, err
			}
			st = &state{tok: toks[i], key: it.Key, cur: cur, next: cur}
			byKey[string(it.Key)] = st
			order = append(order, st)
		}
		st.next = version.Merge(st.next, it.Object)
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, st := range order {
		if version.Equal(st.next, st.cur) {
			continue
		}
		k := objectKey(ks, st.tok, st.key)
		plain, err := encodeObject(st.next)
		if err != nil {
			return 0, err
		}
		v, err := s.seal(k, plain)
		if err != nil {
			return 0, err
		}
		if err := s.stageObject(b, ks, st.tok, st.key, k, v, st.cur, st.next); err != nil {
			return 0, err
		}
		s.rows.drop(st.tok, k)
		st.k, st.plain = k, plain
		changed++
	}
	if changed == 0 {
		return 0, nil
	}
	if err := b.Commit(s.wo); err != nil {
		if errors.Is(err, ErrFailed) {
			return 0, err
		}
		return 0, fmt.Errorf("store: merge %d keys of keyspace %q: %w", changed, ks, err)
	}
	for _, st := range order {
		if st.plain != nil {
			s.rows.put(st.tok, st.k, st.plain)
		}
	}
	if err := s.stillHome(); err != nil {
		return 0, err
	}
	return changed, nil
}

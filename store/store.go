package store

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/version"
)

// lockStripes is the number of per-key lock stripes (a power of two).
const lockStripes = 4096

// Store holds a node's versioned objects in Pebble. All methods are safe
// for concurrent use.
type Store struct {
	db  *pebble.DB
	log *pebbleLogger
	// wo are the options of every write: pebble.Sync. Tests swap in
	// pebble.NoSync to show the crash test catches an unsynced store.
	wo *pebble.WriteOptions

	// locks serialise Updates of one key (and let Get wait for an
	// in-flight Update of its key); a key uses locks[token%lockStripes].
	locks [lockStripes]sync.RWMutex

	// calls lets Close wait for the calls using db.
	calls *gate

	// failed holds the ErrFailed-wrapping error once Pebble reported a
	// fatal error; from then on every call returns it.
	failed atomic.Pointer[error]

	// hints counts the hints held per target (hints.go).
	hints hintBook
	// present counts the hints stored per slot of their keys' hash, so
	// lookups of hints that do not exist skip Pebble.
	present hintPresence
	// receipts remember the write-ahead hints that hold exactly their
	// write's object, for ClearHints (receipts.go).
	receipts *hintReceipts

	// dotFloor is the largest counter of any collected tombstone's clock
	// (tombstones.go).
	dotFloor atomic.Uint64
	// keys seals and opens values; nil means encryption is off (seal.go).
	keys atomic.Pointer[Keyring]
	// rows caches the plaintext of objects (rowcache.go); nil when off.
	rows *rowCache

	// now is the clock of tombstone arrival times.
	now func() time.Time

	// fs and dir locate the data directory; id is its identity, fresh
	// whether it held no store when opened (identity.go).
	fs    vfs.FS
	dir   string
	id    Identity
	fresh bool
	// era counts the opens after an unclean stop (era.go).
	era uint64
}

// Open opens (creating if needed) the store in directory dir. A nil opts
// means defaults.
func Open(dir string, opts *Options) (s *Store, err error) {
	if dir == "" {
		return nil, errors.New("store: empty data directory")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	s = &Store{log: &pebbleLogger{l: o.Logger}, wo: pebble.Sync, calls: newGate(), now: o.Now}
	if s.now == nil {
		s.now = time.Now
	}
	s.fs, s.dir = o.FS, dir
	s.keys.Store(o.Keyring)
	s.rows = newRowCache(o.RowCacheSize)
	s.receipts = newHintReceipts()
	if s.fs == nil {
		s.fs = vfs.Default
	}
	if s.id, s.fresh, err = loadIdentity(s.fs, dir, o.NodeID, s.now()); err != nil {
		return nil, err
	}
	defer catchFatal(&err, nil)
	db, err := pebble.Open(dir, o.pebbleOptions(s.log))
	if err != nil {
		return nil, fmt.Errorf("store: open %q: %w", dir, err)
	}
	s.db = db
	if err := s.loadDotFloor(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %q: %w", dir, err)
	}
	if err := s.loadHintStats(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %q: %w", dir, err)
	}
	if err := s.startEra(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %q: %w", dir, err)
	}
	return s, nil
}

// Close waits for the calls in flight, then closes the store. Calls
// that start once Close has begun return ErrClosed; so do later calls of
// Close.
func (s *Store) Close() (err error) {
	if !s.calls.close() {
		return ErrClosed
	}
	defer catchFatal(&err, s.fail)
	eraErr := s.endEra()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return eraErr
}

// acquire marks a call in flight; the caller must call s.release when
// acquire returned nil.
func (s *Store) acquire() error {
	if !s.calls.enter() {
		return ErrClosed
	}
	if errp := s.failed.Load(); errp != nil {
		s.calls.leave()
		return *errp
	}
	return nil
}

func (s *Store) release() { s.calls.leave() }

// fail puts the store in the failed state (first error wins).
func (s *Store) fail(err error) { s.failed.CompareAndSwap(nil, &err) }

func (s *Store) stripe(tok uint64) *sync.RWMutex { return &s.locks[tok&(lockStripes-1)] }

// lockAll write-locks the stripes of every token in toks, in ascending
// order, so two multi-key calls (and single-key calls, which take one
// stripe) cannot deadlock; it returns the function that unlocks them.
func (s *Store) lockAll(toks []uint64) (unlock func()) {
	stripes := make([]int, 0, len(toks))
	for _, tok := range toks {
		stripes = append(stripes, int(tok&(lockStripes-1)))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		s.locks[i].Lock()
	}
	return func() {
		for _, i := range stripes {
			s.locks[i].Unlock()
		}
	}
}

// Get returns the stored object of key in keyspace ks; a never-written key
// returns (version.New(), nil). Get waits for an Update of the same key in
// flight, so it never returns a write that is not yet durable.
func (s *Store) Get(ks string, key []byte) (*version.Object, error) {
	if err := validate(ks, key); err != nil {
		return nil, err
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	tok := placement.KeyToken(key)
	l := s.stripe(tok)
	l.RLock()
	defer l.RUnlock()
	return s.read(ks, tok, key, objectKey(ks, tok, key))
}

// read returns the object stored under Pebble key k (of key, with ring
// token tok), from the row cache when it holds it. The caller holds the
// key's lock stripe, shared or exclusive (rowCache).
func (s *Store) read(ks string, tok uint64, key, k []byte) (obj *version.Object, err error) {
	if p, ok := s.rows.get(tok, k); ok {
		return decodeStored(ks, key, p)
	}
	defer catchFatal(&err, s.fail)
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return version.New(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read keyspace %q key %s: %w", ks, printableKey(key), err)
	}
	defer closer.Close()
	obj, p, err := s.openObject(ks, key, k, v)
	if err == nil && s.rows != nil {
		if len(p) > 0 && len(v) > 0 && &p[0] == &v[0] {
			p = slices.Clone(p) // unsealed: p is Pebble's buffer
		}
		s.rows.put(tok, k, p)
	}
	return obj, err
}

// openObject opens and decodes v, the stored value of key (Pebble key k)
// in keyspace ks, and returns the object with its plaintext (which may
// alias v).
func (s *Store) openObject(ks string, key, k, v []byte) (*version.Object, []byte, error) {
	p, err := s.open(k, v)
	if err != nil {
		return nil, nil, fmt.Errorf("store: keyspace %q key %s: %w", ks, printableKey(key), err)
	}
	obj, err := decodeStored(ks, key, p)
	return obj, p, err
}

// decodeStored decodes p, the plaintext of key's stored object.
func decodeStored(ks string, key, p []byte) (*version.Object, error) {
	obj, err := decodeObject(p)
	if err != nil {
		return nil, corrupt(ks, key, err)
	}
	return obj, nil
}

// Update runs fn on the current object of the key while holding that
// key's lock, and durably stores (WAL fsync) the object fn returns before
// returning it with changed=true.
//
// If fn returns (nil, nil) or an object version.Equal to the current one,
// nothing is written and the current object is returned with
// changed=false. An error from fn is returned as is and nothing is written.
// fn owns cur. fn runs under a lock stripe shared with other keys, so it
// must not call Get, Update or Merge (that could deadlock); Scan is safe.
// Updates of different keys run concurrently and share fsyncs.
//
// An error other than fn's means the write is not acknowledged: it may or
// may not survive a crash. After an fsync failure the error wraps
// ErrFailed and the Store serves nothing more.
func (s *Store) Update(ks string, key []byte, fn func(cur *version.Object) (*version.Object, error)) (obj *version.Object, changed bool, err error) {
	obj, changed, _, err = s.update(ks, key, fn, nil)
	return obj, changed, err
}

// update is Update that, when q is set, also queues the new object as
// hints for q's targets in the object's batch (UpdateQueued).
func (s *Store) update(ks string, key []byte, fn func(cur *version.Object) (*version.Object, error), q *Queue) (obj *version.Object, changed bool, dropped []string, err error) {
	if err := validate(ks, key); err != nil {
		return nil, false, nil, err
	}
	if err := q.validate(); err != nil {
		return nil, false, nil, err
	}
	if err := s.acquire(); err != nil {
		return nil, false, nil, err
	}
	defer s.release()
	tok := placement.KeyToken(key)
	k := objectKey(ks, tok, key)
	l := s.stripe(tok)
	l.Lock()
	defer l.Unlock()

	cur, err := s.read(ks, tok, key, k)
	if err != nil {
		return nil, false, nil, err
	}
	next, err := fn(cur)
	if err != nil {
		return nil, false, nil, err
	}
	if next == nil || version.Equal(next, cur) {
		return cur, false, nil, nil
	}
	plain, err := encodeObject(next)
	if err != nil {
		return nil, false, nil, err
	}
	v, err := s.seal(k, plain)
	if err != nil {
		return nil, false, nil, err
	}
	s.rows.drop(tok, k)
	if q != nil && len(q.Targets) > 0 {
		dropped, err = s.writeQueued(ks, tok, key, k, v, cur, next, q)
	} else {
		err = s.writeObject(ks, tok, key, k, v, cur, next)
	}
	if err == nil {
		s.rows.put(tok, k, plain)
	}
	if err != nil {
		if errors.Is(err, ErrFailed) {
			return nil, false, nil, err
		}
		return nil, false, nil, fmt.Errorf("store: write keyspace %q key %s: %w", ks, printableKey(key), err)
	}
	if err := s.stillHome(); err != nil {
		return nil, false, nil, err
	}
	return next, true, dropped, nil
}

// writeObject stores v (the encoding of next) under k, with the
// tombstone index change that goes from cur to next, in one synced batch.
func (s *Store) writeObject(ks string, tok uint64, key, k, v []byte, cur, next *version.Object) (err error) {
	defer catchFatal(&err, s.fail)
	if !IsTombstone(cur) && !IsTombstone(next) {
		return s.db.Set(k, v, s.wo)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.stageObject(b, ks, tok, key, k, v, cur, next); err != nil {
		return err
	}
	return b.Commit(s.wo)
}

// Merge joins in into the stored object of the key (version.Merge), via
// Update: changed reports whether in brought anything new.
func (s *Store) Merge(ks string, key []byte, in *version.Object) (obj *version.Object, changed bool, err error) {
	return s.Update(ks, key, func(cur *version.Object) (*version.Object, error) {
		return version.Merge(cur, in), nil
	})
}

// DiskUsage returns the bytes the store occupies on disk (WAL, sstables,
// and files awaiting deletion), or 0 once closed or failed.
func (s *Store) DiskUsage() (n uint64) {
	if s.acquire() != nil {
		return 0
	}
	defer s.release()
	var err error
	defer catchFatal(&err, s.fail)
	return s.db.Metrics().DiskSpaceUsage()
}

// write stores v under k with s.wo (fsynced), then checks the data
// directory is still there.
func (s *Store) write(k, v []byte) (err error) {
	defer catchFatal(&err, s.fail)
	if err := s.db.Set(k, v, s.wo); err != nil {
		return err
	}
	return s.stillHome()
}

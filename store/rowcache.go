package store

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// DefaultRowCacheSize is the row cache budget used when
// Options.RowCacheSize is 0.
const DefaultRowCacheSize = 32 << 20

// rowCacheShards splits the row cache so that reads of different keys
// rarely wait on one mutex (a power of two).
const rowCacheShards = 16

// rowCache holds the plaintext encodings of recently read or written
// objects, keyed by Pebble key, least recently used evicted first once
// their bytes pass the budget. A hit skips Pebble's lookup and the
// decryption of the value; the object is still decoded from the bytes,
// so every caller gets an object of its own to change.
//
// The cache is kept exact by the key's lock stripe: an entry is added by
// a read holding the stripe (shared or exclusive) and changed only by a
// write holding it exclusively, which drops the entry before writing and
// puts the new encoding back only once the write is durable. A read can
// therefore never put back bytes older than a write, and never sees a
// write that is not yet acknowledged. A nil *rowCache caches nothing.
type rowCache struct {
	shards       [rowCacheShards]rowShard
	hits, misses atomic.Uint64
}

// RowCacheStats describes the row cache (Options.RowCacheSize).
type RowCacheStats struct {
	// Hits and Misses count the object reads the cache answered and those
	// that went to Pebble, since the store opened.
	Hits, Misses uint64
	// Bytes is what the cached objects take, against the budget.
	Bytes int64
}

// RowCacheStats returns the row cache's counts; all zero when it is off.
func (s *Store) RowCacheStats() RowCacheStats {
	c := s.rows
	if c == nil {
		return RowCacheStats{}
	}
	st := RowCacheStats{Hits: c.hits.Load(), Misses: c.misses.Load()}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		st.Bytes += sh.bytes
		sh.mu.Unlock()
	}
	return st
}

type rowShard struct {
	mu     sync.Mutex
	lru    *simplelru.LRU[string, []byte]
	bytes  int64
	budget int64
}

// newRowCache returns a cache of about budget bytes (keys and values), or
// nil when budget is not positive.
func newRowCache(budget int64) *rowCache {
	if budget <= 0 {
		return nil
	}
	c := &rowCache{}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.budget = max(budget/rowCacheShards, 1)
		// Bounded by bytes, not entries: the entry limit is never reached.
		sh.lru, _ = simplelru.NewLRU(math.MaxInt, func(k string, v []byte) {
			sh.bytes -= entrySize(k, v)
		})
	}
	return c
}

// entryOverhead approximates the bookkeeping of one entry (list element,
// map slot, headers), so that small objects are not undercounted.
const entryOverhead = 96

func entrySize(k string, v []byte) int64 { return int64(len(k) + len(v) + entryOverhead) }

func (c *rowCache) shard(tok uint64) *rowShard { return &c.shards[(tok>>32)&(rowCacheShards-1)] }

// get returns the cached plaintext of Pebble key k (ring token tok). The
// bytes are shared: callers must not change them.
func (c *rowCache) get(tok uint64, k []byte) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	sh := c.shard(tok)
	sh.mu.Lock()
	v, ok := sh.lru.Get(string(k))
	sh.mu.Unlock()
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return v, ok
}

// put caches plain, which the caller gives up, as the plaintext of k. A
// value larger than a shard's budget is not cached.
func (c *rowCache) put(tok uint64, k, plain []byte) {
	if c == nil {
		return
	}
	sh := c.shard(tok)
	size := entrySize(string(k), plain)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.lru.Remove(string(k))
	if size > sh.budget {
		return
	}
	sh.lru.Add(string(k), plain)
	sh.bytes += size
	for sh.bytes > sh.budget {
		sh.lru.RemoveOldest()
	}
}

// drop forgets k.
func (c *rowCache) drop(tok uint64, k []byte) {
	if c == nil {
		return
	}
	sh := c.shard(tok)
	sh.mu.Lock()
	sh.lru.Remove(string(k))
	sh.mu.Unlock()
}

// purge forgets everything.
func (c *rowCache) purge() {
	if c == nil {
		return
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.lru.Purge()
		sh.mu.Unlock()
	}
}

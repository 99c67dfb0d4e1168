package store

import (
	"sync"
	"weak"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/meridian-kv/meridian/version"
)

// maxReceipts bounds the hints remembered by hintReceipts: the writes in
// flight, with room for the hints of replicas that stay down (the oldest
// go first; a forgotten receipt only means the slow path).
const maxReceipts = 4096

// hintReceipts remembers the write-ahead hints UpdateQueued wrote that hold
// exactly the write's new object, with the bytes stored for each, so that
// ClearHints can tell its own hint by comparing the stored bytes (a sealed
// value's nonce makes them unique) instead of opening and decoding it and
// encoding the object again. Whatever changed the hint since — a later
// write merged into it, a delivery, expiry, re-encryption — changed its
// bytes, and the receipt no longer matches. The object is held weakly:
// a receipt does not keep a write's object alive.
type hintReceipts struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, receipt]
}

type receipt struct {
	obj    weak.Pointer[version.Object]
	stored []byte
}

func newHintReceipts() *hintReceipts {
	lru, _ := simplelru.NewLRU[string, receipt](maxReceipts, nil)
	return &hintReceipts{lru: lru}
}

// add records that stored, the value now under hint key hk, holds exactly
// obj.
func (r *hintReceipts) add(hk []byte, obj *version.Object, stored []byte) {
	r.mu.Lock()
	r.lru.Add(string(hk), receipt{obj: weak.Make(obj), stored: stored})
	r.mu.Unlock()
}

// forget drops hk's receipt.
func (r *hintReceipts) forget(hk []byte) {
	r.mu.Lock()
	r.lru.Remove(string(hk))
	r.mu.Unlock()
}

// take removes hk's receipt and returns the bytes it recorded if it was
// for obj itself.
func (r *hintReceipts) take(hk []byte, obj *version.Object) (stored []byte, ok bool) {
	r.mu.Lock()
	rc, found := r.lru.Peek(string(hk))
	if found {
		r.lru.Remove(string(hk))
	}
	r.mu.Unlock()
	if !found || rc.obj.Value() != obj {
		return nil, false
	}
	return rc.stored, true
}

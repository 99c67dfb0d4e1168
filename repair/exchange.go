package repair

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/meridian-kv/meridian/version"
)

// KeysInLeaves returns the keys and objects of keyspace ks that lie under
// the given leaves of a tree of depth depth over r (depth 0: DefaultDepth),
// keyed by string(key). Adjacent leaves are read with one scan. Empty
// objects are left out, as BuildTree leaves them out.
func KeysInLeaves(src RangeSource, ks string, r Range, depth int, leaves []int) (map[string]*version.Object, error) {
	if depth == 0 {
		depth = DefaultDepth
	}
	out := make(map[string]*version.Object)
	err := scanLeaves(src, ks, r, depth, leaves, func(_ uint64, key []byte, obj *version.Object) {
		out[string(key)] = obj
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scanLeaves calls fn for every non-empty object of ks under the given
// leaves of a tree of depth depth over r, reading adjacent leaves with one
// scan.
func scanLeaves(src RangeSource, ks string, r Range, depth int, leaves []int, fn func(tok uint64, key []byte, obj *version.Object)) error {
	runs, err := LeafRuns(r, depth, leaves)
	if err != nil {
		return err
	}
	for _, run := range runs {
		err := src.Scan(ks, run.From, run.To, func(tok uint64, key []byte, obj *version.Object) error {
			if !obj.IsEmpty() {
				fn(tok, key, obj)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("repair: read leaves of %q %s: %w", ks, r, err)
		}
	}
	return nil
}

// KeyDigest names one key and the KeyHash of its object: what one replica
// sends the other so that only keys whose objects differ travel.
type KeyDigest struct {
	_    struct{} `cbor:",toarray"`
	Key  []byte
	Hash Hash
}

// Digests returns the digest of every non-empty object in objs, sorted by
// key.
func Digests(objs map[string]*version.Object) []KeyDigest {
	out := make([]KeyDigest, 0, len(objs))
	for k, o := range objs {
		if o.IsEmpty() {
			continue
		}
		out = append(out, KeyDigest{Key: []byte(k), Hash: KeyHash([]byte(k), o)})
	}
	slices.SortFunc(out, func(a, b KeyDigest) int { return bytes.Compare(a.Key, b.Key) })
	return out
}

// CompareDigests is the responder's step of a key exchange: given its own
// objects under the differing leaves and the initiator's digests of the
// same leaves, it returns the objects to send the initiator (those whose
// hash differs, and those the initiator lacks) and the keys to ask the
// initiator for (those it has and the responder lacks), sorted. Keys whose
// hashes match travel no further.
func CompareDigests(local map[string]*version.Object, remote []KeyDigest) (send map[string]*version.Object, want [][]byte) {
	send = make(map[string]*version.Object)
	seen := make(map[string]bool, len(remote))
	for _, d := range remote {
		k := string(d.Key)
		seen[k] = true
		l := local[k]
		switch {
		case l.IsEmpty():
			want = append(want, d.Key)
		case KeyHash(d.Key, l) != d.Hash:
			send[k] = l
		}
	}
	for k, l := range local {
		if !seen[k] && !l.IsEmpty() {
			send[k] = l
		}
	}
	slices.SortFunc(want, bytes.Compare)
	want = slices.CompactFunc(want, bytes.Equal)
	return send, want
}

// Reconcile decides, key by key, which objects each side of a repair must
// send the other: toRemote holds the local objects the remote side does
// not already descend from (version.Descends), toLocal the remote objects
// local does not descend from. Objects travel whole, and the receiver
// joins them with version.Merge — repair never overwrites — so a sibling
// survives unless the other side had seen and superseded it, and a value a
// tombstone superseded never comes back. A key whose objects are equal, or
// where one side already holds everything of the other, is sent at most
// one way.
//
// local and remote are not modified; the maps returned share their
// objects. Objects that came from a peer must have passed
// version.Object.Validate.
func Reconcile(local, remote map[string]*version.Object) (toRemote, toLocal map[string]*version.Object) {
	toRemote = make(map[string]*version.Object)
	toLocal = make(map[string]*version.Object)
	for k, l := range local {
		r := remote[k]
		if !l.IsEmpty() && !version.Descends(r, l) {
			toRemote[k] = l
		}
		if !r.IsEmpty() && !version.Descends(l, r) {
			toLocal[k] = r
		}
	}
	for k, r := range remote {
		if _, ok := local[k]; !ok && !r.IsEmpty() {
			toLocal[k] = r
		}
	}
	return toRemote, toLocal
}

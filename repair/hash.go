package repair

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strings"

	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/version"
)

// HashSize is the size of every hash of a tree: SHA-256 truncated to 128
// bits (as SHA-512/256 truncates). 128 bits make an accidental collision
// (a difference the trees miss) a 2^-128 event per comparison, and halve
// the bytes of a tree exchange over the WAN compared with full digests.
const HashSize = 16

// Hash is a key hash, a leaf digest or an inner-node digest.
type Hash [HashSize]byte

// keyStateFormat versions the canonical encoding below. Changing the
// encoding changes every hash, so replicas of different formats would see
// every leaf differ: bump it only together with a session version.
const keyStateFormat = 1

// keyState is what a key hash covers: the key and the object's causal
// state, exactly the contents version.Equal compares. WrittenAt and Trace
// are left out: they are the same on every replica for the same dot, and
// version.Equal ignores them, so two objects that Equal reports equal hash
// equally. Values enter as their SHA-256 so the encoding stays small
// whatever the value size.
type keyState struct {
	_        struct{} `cbor:",toarray"`
	Format   uint
	Key      []byte
	Clock    []clockEntry // by actor, zero counters dropped
	Siblings []siblingState
}

type clockEntry struct {
	_       struct{} `cbor:",toarray"`
	Actor   string
	Counter uint64
}

type siblingState struct {
	_         struct{} `cbor:",toarray"`
	Actor     string
	Counter   uint64
	Deleted   bool
	ValueHash [sha256.Size]byte
}

// canonical returns the deterministic CBOR (codec.Marshal) of key's causal
// state in obj.
func canonical(key []byte, obj *version.Object) []byte {
	st := keyStateOf(key, obj)
	return st.appendCBOR(nil)
}

// keyStateOf returns key's causal state in obj.
func keyStateOf(key []byte, obj *version.Object) *keyState {
	// Empty slices, never nil ones: nil encodes as CBOR null, and an
	// absent object must hash as an empty one (version.Equal).
	if key == nil {
		key = []byte{}
	}
	st := keyState{Format: keyStateFormat, Key: key, Clock: []clockEntry{}, Siblings: []siblingState{}}
	if obj != nil {
		for a, c := range obj.Clock {
			if c > 0 {
				st.Clock = append(st.Clock, clockEntry{Actor: a, Counter: c})
			}
		}
		slices.SortFunc(st.Clock, func(x, y clockEntry) int { return strings.Compare(x.Actor, y.Actor) })
		st.Siblings = make([]siblingState, len(obj.Siblings))
		for i, s := range obj.Siblings {
			st.Siblings[i] = siblingState{
				Actor:     s.Dot.Actor,
				Counter:   s.Dot.Counter,
				Deleted:   s.Deleted,
				ValueHash: sha256.Sum256(s.Value),
			}
		}
		// Stored objects keep siblings in dot order (version.Object's
		// invariant); sort anyway so a hash never depends on it.
		slices.SortFunc(st.Siblings, func(x, y siblingState) int {
			if c := strings.Compare(x.Actor, y.Actor); c != 0 {
				return c
			}
			switch {
			case x.Counter < y.Counter:
				return -1
			case x.Counter > y.Counter:
				return 1
			}
			return 0
		})
	}
	return &st
}

// appendCBOR appends st's deterministic CBOR to dst: the bytes
// codec.Marshal writes for it, without reflection
// (TestKeyStateEncodingMatchesCodec).
func (st *keyState) appendCBOR(dst []byte) []byte {
	dst = slices.Grow(dst, 16+len(st.Key)+len(st.Clock)*32+len(st.Siblings)*(48+sha256.Size))
	dst = append(dst, 0x80|4)
	dst = codec.AppendHead(dst, codec.MajorUint, uint64(st.Format))
	dst = codec.AppendBytes(dst, st.Key)
	dst = codec.AppendHead(dst, codec.MajorArray, uint64(len(st.Clock)))
	for _, c := range st.Clock {
		dst = append(dst, 0x80|2)
		dst = codec.AppendText(dst, c.Actor)
		dst = codec.AppendHead(dst, codec.MajorUint, c.Counter)
	}
	dst = codec.AppendHead(dst, codec.MajorArray, uint64(len(st.Siblings)))
	for i := range st.Siblings {
		s := &st.Siblings[i]
		dst = append(dst, 0x80|4)
		dst = codec.AppendText(dst, s.Actor)
		dst = codec.AppendHead(dst, codec.MajorUint, s.Counter)
		dst = codec.AppendBool(dst, s.Deleted)
		dst = codec.AppendBytes(dst, s.ValueHash[:])
	}
	return dst
}

// KeyHash returns the hash of key holding obj: truncated SHA-256 of the
// canonical CBOR of the key and obj's clock, sibling dots, deleted flags
// and value hashes. Every node computes the same hash for objects that
// version.Equal reports equal, and (but for a 2^-128 accident) a different
// one otherwise.
func KeyHash(key []byte, obj *version.Object) Hash {
	sum := sha256.Sum256(canonical(key, obj))
	return Hash(sum[:HashSize])
}

// leafDigest is the hash a leaf shows: the XOR of its key hashes and their
// count. Hashing the count in keeps a key that is (wrongly) added twice
// from cancelling out of the XOR unseen.
func leafDigest(acc Hash, count uint64) Hash {
	var buf [1 + 8 + HashSize]byte
	buf[0] = 0 // domain: leaf (RFC 6962 §2.1 separates leaves from nodes too)
	binary.BigEndian.PutUint64(buf[1:9], count)
	copy(buf[9:], acc[:])
	sum := sha256.Sum256(buf[:])
	return Hash(sum[:HashSize])
}

// innerDigest is the hash of an inner node over its two children.
func innerDigest(left, right Hash) Hash {
	var buf [1 + 2*HashSize]byte
	buf[0] = 1 // domain: inner node
	copy(buf[1:], left[:])
	copy(buf[1+HashSize:], right[:])
	sum := sha256.Sum256(buf[:])
	return Hash(sum[:HashSize])
}

func (h *Hash) xor(o Hash) {
	a := binary.LittleEndian.Uint64(h[:8]) ^ binary.LittleEndian.Uint64(o[:8])
	b := binary.LittleEndian.Uint64(h[8:]) ^ binary.LittleEndian.Uint64(o[8:])
	binary.LittleEndian.PutUint64(h[:8], a)
	binary.LittleEndian.PutUint64(h[8:], b)
}

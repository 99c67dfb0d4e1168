package version

import (
	"math"

	"github.com/meridian-kv/meridian/codec"
)

// Objects are decoded on every read and every replica write, so their
// decoding is written by hand: UnmarshalCBOR reads the shape the codec
// writes (definite lengths, the exact number of fields, no duplicate
// clock entries, valid UTF-8) without reflection, and hands anything else
// to the reflecting decoder, which decodes it or refuses it as before
// (TestObjectDecodingMatchesReflection, FuzzObjectDecoding).

// DecodeObject decodes data, the codec's encoding of an Object and nothing
// more: as codec.Unmarshal into an Object, without its setting up when
// the object has the usual shape.
func DecodeObject(data []byte) (*Object, error) {
	obj := New()
	if err := obj.UnmarshalCBOR(data); err != nil {
		return nil, err
	}
	return obj, nil
}

// object is Object without its methods, for the reflecting decoder.
type object Object

// UnmarshalCBOR decodes an Object from data (one CBOR data item, and
// nothing after it: the reflecting decoder checks the whole of data).
func (o *Object) UnmarshalCBOR(data []byte) error {
	if obj, ok := parseObject(data); ok {
		*o = *obj
		return nil
	}
	var slow object
	if err := codec.Unmarshal(data, &slow); err != nil {
		return err
	}
	*o = Object(slow)
	return nil
}

// cborReader reads CBOR heads from a byte slice; ok turns false at the
// first thing it does not expect, and stays false.
type cborReader struct {
	b  []byte
	ok bool
}

// head reads a head of major type major with a definite argument.
func (r *cborReader) head(major byte) uint64 {
	if !r.ok {
		return 0
	}
	n, rest, ok := codec.ReadHead(r.b, major)
	if !ok {
		r.ok = false
		return 0
	}
	r.b = rest
	return n
}

// array reads the head of an array of exactly n elements.
func (r *cborReader) array(n uint64) {
	if r.head(codec.MajorArray) != n {
		r.ok = false
	}
}

// null reads a CBOR null if one is next.
func (r *cborReader) null() bool {
	if r.ok && len(r.b) > 0 && r.b[0] == codec.Null {
		r.b = r.b[1:]
		return true
	}
	return false
}

// length reads the head of a string, array or map of major type major
// whose n elements take at least min bytes each, and checks they can be
// there.
func (r *cborReader) length(major byte, min uint64) int {
	n := r.head(major)
	if !r.ok || n > uint64(len(r.b))/min || n > math.MaxInt32 {
		r.ok = false
		return 0
	}
	return int(n)
}

func (r *cborReader) text() string {
	if !r.ok {
		return ""
	}
	s, rest, ok := codec.ReadText(r.b)
	if !ok {
		r.ok = false
		return ""
	}
	r.b = rest
	return s
}

// bytes reads a byte string, or null as nil, into a copy.
func (r *cborReader) bytes() []byte {
	if r.null() {
		return nil
	}
	n := r.length(codec.MajorBytes, 1)
	if !r.ok {
		return nil
	}
	out := make([]byte, n)
	copy(out, r.b[:n])
	r.b = r.b[n:]
	return out
}

func (r *cborReader) int64() int64 {
	if r.ok && len(r.b) > 0 && r.b[0]>>5 == codec.MajorNegInt {
		n := r.head(codec.MajorNegInt)
		if n > math.MaxInt64 {
			r.ok = false
			return 0
		}
		return -1 - int64(n)
	}
	n := r.head(codec.MajorUint)
	if n > math.MaxInt64 {
		r.ok = false
		return 0
	}
	return int64(n)
}

func (r *cborReader) bool() bool {
	if !r.ok || len(r.b) == 0 || (r.b[0] != 0xf4 && r.b[0] != 0xf5) {
		r.ok = false
		return false
	}
	v := r.b[0] == 0xf5
	r.b = r.b[1:]
	return v
}

// maxClock and maxSiblings are the codec's bounds on maps and arrays.
const (
	maxClock    = codec.MaxMapPairs
	maxSiblings = codec.MaxArrayElements
)

// parseObject decodes data when it is an Object in the codec's usual shape
// and nothing follows it; ok is false otherwise.
func parseObject(data []byte) (*Object, bool) {
	r := cborReader{b: data, ok: true}
	r.array(2)
	o := &Object{}
	if !r.null() {
		n := r.length(codec.MajorMap, 2) // a key and a value take a byte each at least
		if !r.ok || n > maxClock {
			return nil, false
		}
		o.Clock = make(Vector, n)
		for range n {
			actor := r.text()
			c := r.head(codec.MajorUint)
			if _, dup := o.Clock[actor]; dup || !r.ok {
				return nil, false
			}
			o.Clock[actor] = c
		}
	}
	if !r.null() {
		n := r.length(codec.MajorArray, 6) // a sibling takes six bytes at least
		if !r.ok || n > maxSiblings {
			return nil, false
		}
		o.Siblings = make([]Sibling, n)
		for i := range o.Siblings {
			s := &o.Siblings[i]
			r.array(5)
			r.array(2)
			s.Dot.Actor = r.text()
			s.Dot.Counter = r.head(codec.MajorUint)
			s.Value = r.bytes()
			s.Deleted = r.bool()
			s.WrittenAt = r.int64()
			s.Trace = r.bytes()
		}
	}
	if !r.ok || len(r.b) != 0 {
		return nil, false
	}
	return o, true
}

package version

import "github.com/meridian-kv/meridian/codec"

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

// maxClock and maxSiblings are the codec's bounds on maps and arrays.
const (
	maxClock    = codec.MaxMapPairs
	maxSiblings = codec.MaxArrayElements
)

// parseObject decodes data when it is an Object in the codec's usual shape
// and nothing follows it; ok is false otherwise.
func parseObject(data []byte) (*Object, bool) {
	r := codec.NewReader(data)
	o := ReadObject(&r)
	if o == nil || !r.Done() {
		return nil, false // null goes to the reflecting decoder, as before
	}
	return o, true
}

// readClock reads a Vector, or null as nil; r turns not OK at anything
// else, an actor twice included.
func readClock(r *codec.Reader) Vector {
	n, ok := r.Container(codec.MajorMap, 2, maxClock) // a key and a value take a byte each at least
	if !ok {
		return nil
	}
	v := make(Vector, n)
	for range n {
		actor := r.Name()
		c := r.Head(codec.MajorUint)
		if _, dup := v[actor]; dup || !r.OK() {
			r.Fail()
			return nil
		}
		v[actor] = c
	}
	return v
}

// ReadObject reads an Object in the codec's usual shape, or null as nil,
// from r, for the hand-written decoder of a message that holds one; r
// turns not OK at anything else.
func ReadObject(r *codec.Reader) *Object {
	if r.Null() {
		return nil
	}
	r.Array(2)
	o := &Object{Clock: readClock(r)}
	if !r.OK() {
		return nil
	}
	if n, ok := r.Container(codec.MajorArray, 6, maxSiblings); ok { // a sibling takes six bytes at least
		o.Siblings = make([]Sibling, n)
		for i := range o.Siblings {
			s := &o.Siblings[i]
			r.Array(5)
			r.Array(2)
			s.Dot.Actor = r.Name()
			s.Dot.Counter = r.Head(codec.MajorUint)
			s.Value = r.Bytes()
			s.Deleted = r.Bool()
			s.WrittenAt = r.Int64()
			s.Trace = r.Bytes()
		}
	}
	if !r.OK() {
		return nil
	}
	return o
}

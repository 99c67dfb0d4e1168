package version

import (
	"slices"

	"github.com/meridian-kv/meridian/codec"
)

// AppendObject appends o's CBOR encoding to dst: the bytes codec.Marshal
// writes (core deterministic: shortest-form heads, clock entries in the
// order of their encoded keys, a nil object, clock, siblings and byte
// strings as null), without reflection. TestObjectEncodingMatchesCodec and
// FuzzObjectDecoding hold it to the codec's bytes.
func AppendObject(dst []byte, o *Object) []byte {
	if o == nil {
		return append(dst, codec.Null)
	}
	dst = slices.Grow(dst, EncodedSize(o))
	dst = append(dst, 0x80|2)
	dst = AppendClock(dst, o.Clock)
	if o.Siblings == nil {
		return append(dst, codec.Null)
	}
	dst = codec.AppendHead(dst, codec.MajorArray, uint64(len(o.Siblings)))
	for i := range o.Siblings {
		s := &o.Siblings[i]
		dst = append(dst, 0x80|5, 0x80|2)
		dst = codec.AppendText(dst, s.Dot.Actor)
		dst = codec.AppendHead(dst, codec.MajorUint, s.Dot.Counter)
		dst = codec.AppendBytes(dst, s.Value)
		dst = codec.AppendBool(dst, s.Deleted)
		dst = codec.AppendInt(dst, s.WrittenAt)
		dst = codec.AppendBytes(dst, s.Trace)
	}
	return dst
}

// AppendClock appends v as codec.Marshal writes a Vector: null for nil,
// else a map with its actors in the order of their encoded keys.
func AppendClock(dst []byte, v Vector) []byte {
	if v == nil {
		return append(dst, codec.Null)
	}
	var buf [16]string
	actors := codec.AppendSortedKeys(buf[:0], v)
	dst = codec.AppendHead(dst, codec.MajorMap, uint64(len(actors)))
	for _, a := range actors {
		dst = codec.AppendText(dst, a)
		dst = codec.AppendHead(dst, codec.MajorUint, v[a])
	}
	return dst
}

// EncodedSize bounds the length of o's encoding (AppendObject's).
func EncodedSize(o *Object) int {
	if o == nil {
		return 1
	}
	n := 3 + 18*len(o.Clock) + 9
	for a := range o.Clock {
		n += len(a)
	}
	for i := range o.Siblings {
		s := &o.Siblings[i]
		n += 2 + 9 + len(s.Dot.Actor) + 9 + 9 + len(s.Value) + 1 + 9 + 9 + len(s.Trace)
	}
	return n
}

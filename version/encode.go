package version

import (
	"slices"
	"strings"

	"github.com/meridian-kv/meridian/codec"
)

// AppendObject appends o's CBOR encoding to dst: the bytes codec.Marshal
// writes (core deterministic: shortest-form heads, clock entries in the
// order of their encoded keys, nil clock, siblings and byte strings as
// null), without reflection. TestObjectEncodingMatchesCodec and
// FuzzObjectDecoding hold it to the codec's bytes.
func AppendObject(dst []byte, o *Object) []byte {
	dst = slices.Grow(dst, encodedSize(o))
	dst = append(dst, 0x80|2)
	if o.Clock == nil {
		dst = append(dst, codec.Null)
	} else {
		actors := make([]string, 0, len(o.Clock))
		for a := range o.Clock {
			actors = append(actors, a)
		}
		// A text key's head grows with its length, so the encoded keys'
		// byte order is by length, then by bytes.
		slices.SortFunc(actors, func(a, b string) int {
			if len(a) != len(b) {
				return len(a) - len(b)
			}
			return strings.Compare(a, b)
		})
		dst = codec.AppendHead(dst, codec.MajorMap, uint64(len(actors)))
		for _, a := range actors {
			dst = codec.AppendText(dst, a)
			dst = codec.AppendHead(dst, codec.MajorUint, o.Clock[a])
		}
	}
	if o.Siblings == nil {
		return append(dst, codec.Null)
	}
	dst = codec.AppendHead(dst, codec.MajorArray, uint64(len(o.Siblings)))
	for i := range o.Siblings {
		s := &o.Siblings[i]
		dst = append(dst, 0x80|5, 0x80|2)
		dst = codec.AppendText(dst, s.Dot.Actor)
		dst = codec.AppendHead(dst, codec.MajorUint, s.Dot.Counter)
		dst = appendBytes(dst, s.Value)
		if s.Deleted {
			dst = append(dst, 0xf5)
		} else {
			dst = append(dst, 0xf4)
		}
		if s.WrittenAt >= 0 {
			dst = codec.AppendHead(dst, codec.MajorUint, uint64(s.WrittenAt))
		} else {
			dst = codec.AppendHead(dst, codec.MajorNegInt, uint64(-1-s.WrittenAt))
		}
		dst = appendBytes(dst, s.Trace)
	}
	return dst
}

// encodedSize bounds the length of o's encoding.
func encodedSize(o *Object) int {
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

// appendBytes appends b as a byte string, nil as null.
func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, codec.Null)
	}
	return append(codec.AppendHead(dst, codec.MajorBytes, uint64(len(b))), b...)
}

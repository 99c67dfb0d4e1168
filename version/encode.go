package version

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
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
		dst = append(dst, cborNull)
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
		dst = appendHead(dst, 5, uint64(len(actors)))
		for _, a := range actors {
			dst = appendText(dst, a)
			dst = appendHead(dst, 0, o.Clock[a])
		}
	}
	if o.Siblings == nil {
		return append(dst, cborNull)
	}
	dst = appendHead(dst, 4, uint64(len(o.Siblings)))
	for i := range o.Siblings {
		s := &o.Siblings[i]
		dst = append(dst, 0x80|5, 0x80|2)
		dst = appendText(dst, s.Dot.Actor)
		dst = appendHead(dst, 0, s.Dot.Counter)
		dst = appendBytes(dst, s.Value)
		if s.Deleted {
			dst = append(dst, 0xf5)
		} else {
			dst = append(dst, 0xf4)
		}
		if s.WrittenAt >= 0 {
			dst = appendHead(dst, 0, uint64(s.WrittenAt))
		} else {
			dst = appendHead(dst, 1, uint64(-1-s.WrittenAt))
		}
		dst = appendBytes(dst, s.Trace)
	}
	return dst
}

const cborNull = 0xf6

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

// appendHead appends a CBOR head of major type major and argument n in
// its shortest form.
func appendHead(dst []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(dst, m|byte(n))
	case n <= math.MaxUint8:
		return append(dst, m|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, m|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, m|26), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, m|27), n)
	}
}

func appendText(dst []byte, s string) []byte {
	return append(appendHead(dst, 3, uint64(len(s))), s...)
}

// appendBytes appends b as a byte string, nil as null.
func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, cborNull)
	}
	return append(appendHead(dst, 2, uint64(len(b))), b...)
}

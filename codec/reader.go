package codec

import (
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// Reader reads the items of a hand-written decoder (the shape Marshal
// writes: definite lengths, shortest or longer heads, valid UTF-8) from a
// byte slice. It turns not OK at the first thing it does not expect, and
// stays so; its reads then return zero values. A decoder that finds its
// Reader not OK hands the data to Unmarshal, which decodes or refuses it.
type Reader struct {
	b  []byte
	ok bool
}

// NewReader returns a Reader of b.
func NewReader(b []byte) Reader { return Reader{b: b, ok: true} }

// OK reports whether everything read so far had the expected shape.
func (r *Reader) OK() bool { return r.ok }

// Done reports whether everything read had the expected shape and nothing
// is left.
func (r *Reader) Done() bool { return r.ok && len(r.b) == 0 }

// Fail turns r not OK: the data is not of the shape expected.
func (r *Reader) Fail() { r.ok = false }

// Int reads an integer that fits an int.
func (r *Reader) Int() int {
	n := r.Int64()
	if int64(int(n)) != n {
		r.ok = false
		return 0
	}
	return int(n)
}

// Uint8 reads an unsigned integer that fits a uint8.
func (r *Reader) Uint8() uint8 {
	n := r.Head(MajorUint)
	if n > math.MaxUint8 {
		r.ok = false
		return 0
	}
	return uint8(n)
}

// Head reads a head of major type major with a definite argument.
func (r *Reader) Head(major byte) uint64 {
	if !r.ok {
		return 0
	}
	n, rest, ok := ReadHead(r.b, major)
	if !ok {
		r.ok = false
		return 0
	}
	r.b = rest
	return n
}

// Array reads the head of an array of exactly n elements.
func (r *Reader) Array(n uint64) {
	if r.Head(MajorArray) != n {
		r.ok = false
	}
}

// Null reads a CBOR null if one is next.
func (r *Reader) Null() bool {
	if r.ok && len(r.b) > 0 && r.b[0] == Null {
		r.b = r.b[1:]
		return true
	}
	return false
}

// Length reads the head of a string, array or map of major type major
// whose n elements take at least min bytes each, and checks they can be
// there.
func (r *Reader) Length(major byte, min uint64) int {
	n := r.Head(major)
	if !r.ok || n > uint64(len(r.b))/min || n > math.MaxInt32 {
		r.ok = false
		return 0
	}
	return int(n)
}

// Container reads the head of an array or map (major) whose elements take
// at least min bytes each, of at most max elements, or null: ok is false
// for null (a nil slice or map) and when r is not OK.
func (r *Reader) Container(major byte, min uint64, max int) (n int, ok bool) {
	if r.Null() {
		return 0, false
	}
	n = r.Length(major, min)
	if n > max {
		r.Fail()
	}
	return n, r.OK()
}

// Text reads a text string.
func (r *Reader) Text() string {
	if !r.ok {
		return ""
	}
	s, rest, ok := ReadText(r.b)
	if !ok {
		r.ok = false
		return ""
	}
	r.b = rest
	return s
}

// Name reads a text string that recurs from message to message (an actor,
// a keyspace, a node, datacenter or consistency level): as Text, but a
// string read recently is returned again rather than allocated anew.
func (r *Reader) Name() string {
	if !r.ok {
		return ""
	}
	n, rest, ok := ReadHead(r.b, MajorText)
	if !ok || n > uint64(len(rest)) {
		r.ok = false
		return ""
	}
	b := rest[:n]
	r.b = rest[n:]
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxName {
		if !utf8.Valid(b) {
			r.ok = false
			return ""
		}
		return string(b)
	}
	slot := &names[maphash.Bytes(nameSeed, b)%uint64(len(names))]
	if p := slot.Load(); p != nil && *p == string(b) {
		return *p // valid UTF-8: it was checked when it was stored
	}
	if !utf8.Valid(b) {
		r.ok = false
		return ""
	}
	s := string(b)
	slot.Store(&s)
	return s
}

// names holds recently read names, one per slot of their hash; a name
// evicts another that hashes to its slot.
var (
	names    [512]atomic.Pointer[string]
	nameSeed = maphash.MakeSeed()
)

// maxName bounds the length of a name kept in names.
const maxName = 64

// Bytes reads a byte string, or null as nil, into a copy.
func (r *Reader) Bytes() []byte {
	if r.Null() {
		return nil
	}
	n := r.Length(MajorBytes, 1)
	if !r.ok {
		return nil
	}
	out := make([]byte, n)
	copy(out, r.b[:n])
	r.b = r.b[n:]
	return out
}

// Int64 reads an integer that fits an int64.
func (r *Reader) Int64() int64 {
	if r.ok && len(r.b) > 0 && r.b[0]>>5 == MajorNegInt {
		n := r.Head(MajorNegInt)
		if n > math.MaxInt64 {
			r.ok = false
			return 0
		}
		return -1 - int64(n)
	}
	n := r.Head(MajorUint)
	if n > math.MaxInt64 {
		r.ok = false
		return 0
	}
	return int64(n)
}

// Bool reads true or false.
func (r *Reader) Bool() bool {
	if !r.ok || len(r.b) == 0 || (r.b[0] != 0xf4 && r.b[0] != 0xf5) {
		r.ok = false
		return false
	}
	v := r.b[0] == 0xf5
	r.b = r.b[1:]
	return v
}

// AppendBytes appends b as a byte string, nil as null, as Marshal writes
// a []byte.
func AppendBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, Null)
	}
	return append(AppendHead(dst, MajorBytes, uint64(len(b))), b...)
}

// AppendInt appends n as Marshal writes an integer.
func AppendInt(dst []byte, n int64) []byte {
	if n >= 0 {
		return AppendHead(dst, MajorUint, uint64(n))
	}
	return AppendHead(dst, MajorNegInt, uint64(-1-n))
}

// AppendBool appends v as CBOR true or false.
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 0xf5)
	}
	return append(dst, 0xf4)
}

// SortedKeys returns the keys of m in the order Marshal writes them: a
// text key's head grows with its length, so the encoded keys' byte order
// is by length, then by bytes.
func SortedKeys[V any](m map[string]V) []string {
	return AppendSortedKeys(make([]string, 0, len(m)), m)
}

// AppendSortedKeys is SortedKeys appending to dst: with a dst on the
// caller's stack, a small map's keys are sorted without allocating.
func AppendSortedKeys[V any](dst []string, m map[string]V) []string {
	start := len(dst)
	for k := range m {
		dst = append(dst, k)
	}
	slices.SortFunc(dst[start:], func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	})
	return dst
}

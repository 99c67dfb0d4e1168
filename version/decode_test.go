package version

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/meridian-kv/meridian/codec"
)

// sampleObjects covers empty and null parts, tombstones, long and
// non-ASCII actors, values from empty to 70 KB, integers of every width and
// negative write times.
func sampleObjects() []*Object {
	r := rand.New(rand.NewPCG(3, 4))
	counters := []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, math.MaxUint32 + 1, math.MaxUint64}
	times := []int64{0, -1, -25, 1_733_000_000_000_000_000, math.MinInt64, math.MaxInt64}
	values := [][]byte{nil, {}, []byte("v"), bytes.Repeat([]byte("x"), 1000), bytes.Repeat([]byte{0}, 70000)}
	actors := []string{"a", "east-1", "é-🙂", string(bytes.Repeat([]byte("n"), 300))}
	out := []*Object{New(), {Clock: Vector{}}, {Siblings: []Sibling{}}}
	for range 300 {
		o := &Object{}
		if r.IntN(5) > 0 {
			o.Clock = Vector{}
			for range r.IntN(4) {
				o.Clock[actors[r.IntN(len(actors))]+fmt.Sprint(r.IntN(9))] = counters[r.IntN(len(counters))]
			}
		}
		if r.IntN(5) > 0 {
			o.Siblings = []Sibling{}
			for range r.IntN(4) {
				s := Sibling{
					Dot:       Dot{Actor: actors[r.IntN(len(actors))], Counter: counters[r.IntN(len(counters))]},
					Value:     values[r.IntN(len(values))],
					Deleted:   r.IntN(3) == 0,
					WrittenAt: times[r.IntN(len(times))],
				}
				if r.IntN(2) == 0 {
					s.Trace = bytes.Repeat([]byte{7}, 24)
				}
				o.Siblings = append(o.Siblings, s)
			}
		}
		out = append(out, o)
	}
	return out
}

// reflected decodes data with the codec's reflecting decoder alone.
func reflected(data []byte) (*Object, error) {
	var o object
	if err := codec.Unmarshal(data, &o); err != nil {
		return nil, err
	}
	return (*Object)(&o), nil
}

// TestObjectDecodingMatchesReflection: every object the codec encodes is
// decoded by hand, into what the reflecting decoder makes of it.
func TestObjectDecodingMatchesReflection(t *testing.T) {
	for _, o := range sampleObjects() {
		data, err := codec.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		want, err := reflected(data)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseObject(data)
		if !ok {
			t.Fatalf("parseObject refused the encoding of %+v", o)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseObject read\n%+v\nthe codec read\n%+v", got, want)
		}
		var through Object
		if err := codec.Unmarshal(data, &through); err != nil || !reflect.DeepEqual(&through, want) {
			t.Fatalf("codec.Unmarshal into an Object: %+v, %v", through, err)
		}
		if direct, err := DecodeObject(data); err != nil || !reflect.DeepEqual(direct, want) {
			t.Fatalf("DecodeObject: %+v, %v", direct, err)
		}
	}
}

// FuzzObjectDecoding: for any bytes, decoding an Object (by hand where it
// can) and the reflecting decoder alone agree: both refuse, or both read
// the same object; and whatever parseObject accepts, the reflecting
// decoder reads identically.
func FuzzObjectDecoding(f *testing.F) {
	for _, o := range sampleObjects()[:30] {
		b, err := codec.Marshal(o)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x82, 0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02, 0x80}) // a duplicate clock entry
	f.Add([]byte{0x82, 0xa1, 0x61, 0xff, 0x01, 0x80})                   // invalid UTF-8
	f.Add([]byte{0x82, 0xf6, 0x81, 0x85, 0x82, 0x61, 0x61, 0x01, 0x41, 0x76, 0xf6, 0x00, 0xf6})
	f.Add([]byte{0x83, 0xf6, 0xf6, 0xf6})
	f.Fuzz(func(t *testing.T, data []byte) {
		want, werr := reflected(data)
		var got Object
		gerr := codec.Unmarshal(data, &got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%x: reflecting decoder: %v; Object decoding: %v", data, werr, gerr)
		}
		if werr == nil && !reflect.DeepEqual(&got, want) {
			t.Fatalf("%x: Object decoding read\n%+v\nthe reflecting decoder read\n%+v", data, &got, want)
		}
		direct, derr := DecodeObject(data)
		if (werr == nil) != (derr == nil) || (werr == nil && !reflect.DeepEqual(direct, want)) {
			t.Fatalf("%x: DecodeObject: %+v, %v; the reflecting decoder: %+v, %v", data, direct, derr, want, werr)
		}
		if werr == nil {
			enc, err := codec.Marshal(want)
			if err != nil {
				t.Fatalf("%x decoded but does not encode: %v", data, err)
			}
			if mine := AppendObject(nil, want); !bytes.Equal(mine, enc) {
				t.Fatalf("%x: AppendObject %x, codec %x", data, mine, enc)
			}
		}
		if fast, ok := parseObject(data); ok {
			if werr != nil {
				t.Fatalf("%x: parseObject accepted what the codec refuses: %v", data, werr)
			}
			if !reflect.DeepEqual(fast, want) {
				t.Fatalf("%x: parseObject read\n%+v\nthe reflecting decoder read\n%+v", data, fast, want)
			}
		}
	})
}

// BenchmarkDecodeObject decodes a 1000-byte value with a two-entry clock,
// by hand (Object) and by reflection alone (reflect).
func BenchmarkDecodeObject(b *testing.B) {
	o := New().Update(nil, "east-1", Write{Value: bytes.Repeat([]byte("v"), 1000), WrittenAt: 1_733_000_000_000_000_000, Trace: bytes.Repeat([]byte{7}, 24)})
	o.Clock["east-2"] = 7
	data, err := codec.Marshal(o)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Object", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got Object
			if err := codec.Unmarshal(data, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeObject", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeObject(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := reflected(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestObjectEncodingMatchesCodec: AppendObject writes what codec.Marshal
// writes.
func TestObjectEncodingMatchesCodec(t *testing.T) {
	objs := sampleObjects()
	many := &Object{Clock: Vector{}}
	for i := range 300 {
		many.Clock[fmt.Sprint(strings.Repeat("k", i%40), i)] = uint64(i)
	}
	objs = append(objs, many)
	for _, o := range objs {
		want, err := codec.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendObject(nil, o); !bytes.Equal(got, want) {
			t.Fatalf("object %+v:\nAppendObject %x\ncodec        %x", o, got[:min(len(got), 80)], want[:min(len(want), 80)])
		}
	}
}

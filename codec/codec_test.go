package codec

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

type keyed struct {
	Version int    `cbor:"1,keyasint"`
	Name    string `cbor:"2,keyasint"`
}

type tuple struct {
	_ struct{} `cbor:",toarray"`
	A uint64
	B []byte
}

func nested(depth int) []byte {
	// depth one-element arrays around an integer.
	return append(bytes.Repeat([]byte{0x81}, depth), 0x01)
}

func TestMarshalRoundTrip(t *testing.T) {
	in := tuple{A: 7, B: []byte("x")}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out tuple
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.A != in.A || !bytes.Equal(out.B, in.B) {
		t.Fatalf("round trip gave %+v", out)
	}
	kb, err := Marshal(keyed{Version: 1, Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	var k keyed
	if err := Unmarshal(kb, &k); err != nil || k != (keyed{Version: 1, Name: "n"}) {
		t.Fatalf("keyed round trip = %+v, %v", k, err)
	}
}

// TestMarshalIsDeterministic: equal values give equal bytes (RFC 8949
// §4.2.1: sorted map keys, shortest integer heads).
func TestMarshalIsDeterministic(t *testing.T) {
	a := map[string]uint64{}
	b := map[string]uint64{}
	keys := []string{"zz", "a", "mm", "b", "c", "yyy"}
	for i, k := range keys {
		a[k] = uint64(i)
	}
	for i := len(keys) - 1; i >= 0; i-- {
		b[keys[i]] = uint64(i)
	}
	ea, _ := Marshal(a)
	for range 20 {
		eb, _ := Marshal(b)
		if !bytes.Equal(ea, eb) {
			t.Fatalf("equal maps encode differently: %x vs %x", ea, eb)
		}
	}
	if got, _ := Marshal(uint64(1)); !bytes.Equal(got, []byte{0x01}) {
		t.Fatalf("Marshal(1) = %x, want shortest form 01", got)
	}
	if got, _ := Marshal(map[string]int{"b": 1, "a": 2}); !bytes.Equal(got, []byte{0xa2, 0x61, 0x61, 0x02, 0x61, 0x62, 0x01}) {
		t.Fatalf("map keys not sorted: %x", got)
	}
}

func TestUnmarshalAcceptsTheLimits(t *testing.T) {
	var v any
	if err := Unmarshal(nested(MaxNesting), &v); err != nil {
		t.Fatalf("%d nested arrays: %v", MaxNesting, err)
	}
	arr, _ := Marshal(make([]int, MaxArrayElements))
	var ints []int
	if err := Unmarshal(arr, &ints); err != nil || len(ints) != MaxArrayElements {
		t.Fatalf("%d array elements: %d, %v", MaxArrayElements, len(ints), err)
	}
	m := map[int]int{}
	for i := range MaxMapPairs {
		m[i] = i
	}
	mb, _ := Marshal(m)
	var back map[int]int
	if err := Unmarshal(mb, &back); err != nil || len(back) != MaxMapPairs {
		t.Fatalf("%d map pairs: %d, %v", MaxMapPairs, len(back), err)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	one, _ := Marshal(tuple{A: 1})
	bigArray, _ := Marshal(make([]int, MaxArrayElements+1))
	bigMap := map[int]int{}
	for i := range MaxMapPairs + 1 {
		bigMap[i] = i
	}
	bigMapEnc, _ := Marshal(bigMap)
	unknownField, _ := Marshal(map[int]any{1: 1, 2: "n", 3: true})

	tests := []struct {
		name string
		data []byte
		into func() any
		as   any // a pointer to the cbor error type expected, or nil
	}{
		{"empty input", nil, newAny, nil},
		{"trailing bytes", append(one[:len(one):len(one)], 0x00), newTuple, new(*cbor.ExtraneousDataError)},
		{"two items", []byte{0x01, 0x02}, newAny, new(*cbor.ExtraneousDataError)},
		{"truncated", one[:len(one)-1], newTuple, nil},
		{"indefinite-length array", []byte{0x9f, 0x01, 0xff}, newAny, new(*cbor.IndefiniteLengthError)},
		{"indefinite-length map", []byte{0xbf, 0x61, 0x61, 0x01, 0xff}, newAny, new(*cbor.IndefiniteLengthError)},
		{"indefinite-length byte string", []byte{0x5f, 0x41, 0x00, 0xff}, newAny, new(*cbor.IndefiniteLengthError)},
		{"indefinite-length text string", []byte{0x7f, 0x61, 0x61, 0xff}, newAny, new(*cbor.IndefiniteLengthError)},
		{"indefinite-length inside a struct", []byte{0x82, 0x01, 0x5f, 0x41, 0x00, 0xff}, newTuple, new(*cbor.IndefiniteLengthError)},
		{"duplicate map key into any", []byte{0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02}, newAny, new(*cbor.DupMapKeyError)},
		{"duplicate map key into a map", []byte{0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02}, newStringMap, new(*cbor.DupMapKeyError)},
		{"duplicate field of a keyed struct", []byte{0xa2, 0x01, 0x01, 0x01, 0x02}, newKeyed, new(*cbor.DupMapKeyError)},
		{"unknown field of a keyed struct", unknownField, newKeyed, new(*cbor.UnknownFieldError)},
		{"nesting one past the limit", nested(MaxNesting + 1), newAny, new(*cbor.MaxNestedLevelError)},
		{"deep nesting", nested(10000), newAny, new(*cbor.MaxNestedLevelError)},
		{"deep map nesting", append(bytes.Repeat([]byte{0xa1, 0x01}, MaxNesting+1), 0x01), newAny, new(*cbor.MaxNestedLevelError)},
		{"deep tag nesting", append(bytes.Repeat([]byte{0xd8, 0x64}, 100), 0x01), newAny, new(*cbor.TagsMdError)},
		{"a tag", []byte{0xc1, 0x01}, newAny, new(*cbor.TagsMdError)},
		// Built-in tag content is checked only at the top level, so a bad
		// tag inside a raw message would decode and fail to re-encode.
		{"a tag inside a raw message", []byte{0x81, 0xc0, 0x20}, func() any { return new(RawMessage) }, new(*cbor.TagsMdError)},
		{"too many array elements", bigArray, newAny, new(*cbor.MaxArrayElementsError)},
		{"array header past the limit with no data", []byte{0x9a, 0x7f, 0xff, 0xff, 0xff}, newAny, new(*cbor.MaxArrayElementsError)},
		{"too many map pairs", bigMapEnc, newAny, new(*cbor.MaxMapPairsError)},
		{"byte string longer than the input", []byte{0x5a, 0x7f, 0xff, 0xff, 0xff, 0x00}, newAny, nil},
		{"invalid utf-8", []byte{0x62, 0xc3, 0x28}, newAny, nil},
		{"array too long for a toarray struct", []byte{0x83, 0x01, 0x40, 0x01}, newTuple, nil},
		{"wrong type", []byte{0x61, 0x61}, newTuple, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Unmarshal(tt.data, tt.into())
			if err == nil {
				t.Fatalf("Unmarshal(%x) succeeded", tt.data)
			}
			if !strings.HasPrefix(err.Error(), "codec: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if tt.as != nil && !errors.As(err, tt.as) {
				t.Errorf("error %v (%T) does not wrap %T", err, errors.Unwrap(err), tt.as)
			}
		})
	}
}

func newAny() any       { return new(any) }
func newTuple() any     { return new(tuple) }
func newKeyed() any     { return new(keyed) }
func newStringMap() any { return new(map[string]uint64) }

// FuzzUnmarshal: no input makes the decoder panic, and whatever it
// accepts round-trips: into a struct or a map it re-encodes, decodes again
// to an equal value, and re-encodes to the same bytes; into any, the one
// exception is a value with no deterministic encoding (a map whose keys
// collide once encoded, or NaN keys), which may fail to encode, and NaN,
// which is not equal to itself, so there only the bytes are compared.
func FuzzUnmarshal(f *testing.F) {
	for _, v := range []any{1, "a", []byte{1}, []any{1, "b"}, map[string]uint64{"a": 1}, tuple{A: 3, B: []byte("x")}} {
		b, err := Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(nested(MaxNesting))
	f.Add([]byte{0x9f, 0x01, 0xff})
	f.Add([]byte{0xc1, 0x1a, 0x00, 0x00, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, into := range []func() any{newAny, newTuple, newKeyed, newStringMap} {
			v := into()
			if err := Unmarshal(data, v); err != nil {
				continue
			}
			_, isAny := v.(*any)
			b, err := Marshal(v)
			if err != nil {
				if isAny {
					continue
				}
				t.Fatalf("decoded %T %+v does not encode: %v", v, v, err)
			}
			back := into()
			if err := Unmarshal(b, back); err != nil {
				t.Fatalf("%T: re-encoded %x does not decode: %v", v, b, err)
			}
			b2, err := Marshal(back)
			if err != nil || !bytes.Equal(b, b2) {
				t.Fatalf("%T: encoding not stable: %x then %x (%v)", v, b, b2, err)
			}
			if !isAny && !reflect.DeepEqual(v, back) {
				t.Fatalf("%T: round trip changed the value: %+v, then %+v", v, v, back)
			}
			if isAny && !reflect.DeepEqual(v, back) && !strings.Contains(fmt.Sprint(*v.(*any)), "NaN") {
				t.Fatalf("any: round trip changed the value: %#v, then %#v", *v.(*any), *back.(*any))
			}
		}
	})
}

// TestReaderNames: Name reads what Text reads, refuses invalid UTF-8
// however often it is read, and returns a name read before without
// allocating.
func TestReaderNames(t *testing.T) {
	name := AppendText(nil, "east-1@b7c7df83a3ce")
	long := AppendText(nil, strings.Repeat("n", maxName+1))
	for _, b := range [][]byte{name, long, AppendText(nil, ""), AppendText(nil, "é")} {
		r, q := NewReader(b), NewReader(b)
		if got, want := r.Name(), q.Text(); got != want || !r.Done() || !q.Done() {
			t.Errorf("Name of %x = %q, Text %q", b, got, want)
		}
	}
	bad := AppendText(nil, "\xff\xfe")
	for range 2 {
		if r := NewReader(bad); r.Name() != "" || r.OK() {
			t.Error("Name accepted invalid UTF-8")
		}
	}
	for _, b := range [][]byte{{0x63, 'a'}, {0x40}, nil} {
		if r := NewReader(b); r.Name() != "" || r.OK() {
			t.Errorf("Name of %x accepted", b)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() {
		r := NewReader(name)
		if r.Name() == "" {
			t.Fatal("empty name")
		}
	}); allocs != 0 {
		t.Errorf("reading a name again allocated %v times", allocs)
	}
}

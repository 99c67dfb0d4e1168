package version

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/meridian-kv/meridian/codec"
)

func TestContextRoundTrip(t *testing.T) {
	many := Vector{}
	for i := range 100 {
		many[fmt.Sprintf("node-%03d", i)] = uint64(i) * 1000003
	}
	tests := []Vector{
		nil,
		{},
		{"a": 1},
		{"a": 3, "b": 1, "c": 1 << 40},
		{"": 1, "ü": maxContextCounter},
		many,
	}
	for _, v := range tests {
		s := EncodeContext(v)
		if len(v) == 0 && s != "" {
			t.Errorf("EncodeContext(%v) = %q, want \"\"", v, s)
		}
		if strings.ContainsAny(s, "+/=") {
			t.Errorf("EncodeContext(%v) = %q is not URL-safe", v, s)
		}
		got, err := DecodeContext(s)
		if err != nil {
			t.Fatalf("DecodeContext(EncodeContext(%v)) = %v", v, err)
		}
		if !got.Equal(v) || len(got) != len(v) {
			t.Errorf("round trip of %v gave %v", v, got)
		}
		if EncodeContext(got) != s {
			t.Errorf("re-encoding %v changed the string", v)
		}
	}
}

// TestContextEncodingIsDeterministic: equal vectors give equal strings,
// whatever the map's insertion order.
func TestContextEncodingIsDeterministic(t *testing.T) {
	a := Vector{}
	b := Vector{}
	keys := []string{"z", "a", "m", "b", "y", "c"}
	for i, k := range keys {
		a[k] = uint64(i + 1)
		b[keys[len(keys)-1-i]] = uint64(len(keys) - i)
	}
	for range 20 {
		if EncodeContext(a) != EncodeContext(b) {
			t.Fatalf("equal vectors encode differently")
		}
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestDecodeContextRejects(t *testing.T) {
	vec, _ := codec.Marshal(Vector{"a": 1})
	tooMany := map[string]uint64{}
	for i := range codec.MaxMapPairs + 1 {
		tooMany[fmt.Sprint(i)] = 1
	}
	tooManyEnc, _ := codec.Marshal(tooMany)
	tests := []struct {
		name string
		in   string
	}{
		{"garbage", "not a context!"},
		{"standard base64 alphabet", base64.StdEncoding.EncodeToString([]byte{0xa1, 0x61, 0x61, 0xfb, 0xff})},
		{"padded base64", base64.URLEncoding.EncodeToString(vec)},
		{"truncated base64", b64(vec)[:1]},
		{"truncated cbor", b64(vec[:len(vec)-1])},
		{"trailing bytes", b64(append(vec[:len(vec):len(vec)], 0x00))},
		{"not a map", b64([]byte{0x01})},
		{"array", b64([]byte{0x81, 0x01})},
		{"negative counter", b64([]byte{0xa1, 0x61, 0x61, 0x20})},
		{"float counter", b64([]byte{0xa1, 0x61, 0x61, 0xf9, 0x3c, 0x00})},
		{"integer actor", b64([]byte{0xa1, 0x01, 0x01})},
		{"duplicate actor", b64([]byte{0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02})},
		{"indefinite-length map", b64([]byte{0xbf, 0x61, 0x61, 0x01, 0xff})},
		{"invalid utf-8 actor", b64([]byte{0xa1, 0x61, 0xff, 0x01})},
		{"too many actors", b64(tooManyEnc)},
		{"counter that would wrap", EncodeContext(Vector{"a": math.MaxUint64})},
		{"counter above the bound", EncodeContext(Vector{"a": 1, "b": maxContextCounter + 1})},
		{"huge input", strings.Repeat("A", MaxContextLen+1)},
		{"huge valid-looking input", b64(make([]byte, MaxContextLen))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := DecodeContext(tt.in)
			if !errors.Is(err, ErrBadContext) {
				t.Fatalf("DecodeContext = %v, %v; want ErrBadContext", v, err)
			}
			if v != nil {
				t.Fatalf("DecodeContext returned %v with its error", v)
			}
		})
	}
}

// TestForgedContextCannotWrapCounter is the scenario behind the counter
// bound: a context claiming counter 2^64-1 for the coordinator made Update
// give the write dot a:0 and set the clock back, so the acknowledged write
// vanished on the next merge and later writes reused covered dots.
func TestForgedContextCannotWrapCounter(t *testing.T) {
	forged := EncodeContext(Vector{"a": math.MaxUint64})
	if _, err := DecodeContext(forged); !errors.Is(err, ErrBadContext) {
		t.Fatalf("DecodeContext(forged) = %v, want ErrBadContext", err)
	}
	// The largest accepted counter still leaves room for fresh dots.
	ctx, err := DecodeContext(EncodeContext(Vector{"a": maxContextCounter}))
	if err != nil {
		t.Fatal(err)
	}
	a := put(New(), nil, "a", "x")
	b := Merge(New(), a)
	a = put(a, ctx, "a", "acked")
	if got := values(Merge(b, a)); len(got) != 1 || got[0] != "acked" {
		t.Fatalf("after merge values = %q, want [acked]", got)
	}
}

func FuzzDecodeContext(f *testing.F) {
	f.Add("")
	f.Add(EncodeContext(Vector{"a": 1}))
	f.Add(EncodeContext(Vector{"a": 3, "b": 1, "c": 7}))
	f.Add(EncodeContext(Vector{"a": math.MaxUint64}))
	f.Add("9g")
	f.Add("oA")
	f.Add("oWFhAQ\n")
	f.Add(b64([]byte{0xbf, 0x61, 0x61, 0x01, 0xff}))
	f.Add(b64([]byte{0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02})) // an actor twice
	f.Add(b64([]byte{0xa1, 0x61, 'a', 0x18, 0x01}))            // a counter in a longer head than needed
	f.Fuzz(func(t *testing.T, s string) {
		v, err := DecodeContext(s)
		// The hand-written decoding agrees with the reflecting decoder.
		if b, berr := base64.RawURLEncoding.DecodeString(s); berr == nil && s != "" && len(s) <= MaxContextLen {
			var slow Vector
			if serr := codec.Unmarshal(b, &slow); serr != nil && err == nil {
				t.Fatalf("accepted %x, which the codec refuses: %v", b, serr)
			} else if serr == nil && err == nil && !reflect.DeepEqual(v, slow) {
				t.Fatalf("%x decodes to %#v, the codec's to %#v", b, v, slow)
			}
		}
		if err == nil && len(v) > 0 {
			if want, _ := codec.Marshal(v); EncodeContext(v) != b64(want) {
				t.Fatalf("EncodeContext(%v) = %s, the codec's %s", v, EncodeContext(v), b64(want))
			}
		}
		if err != nil {
			if !errors.Is(err, ErrBadContext) {
				t.Fatalf("error %v is not ErrBadContext", err)
			}
			return
		}
		for a, c := range v {
			if c > maxContextCounter {
				t.Fatalf("accepted counter %d for %q", c, a)
			}
		}
		// What was accepted re-encodes to a context that decodes the same.
		back, err := DecodeContext(EncodeContext(v))
		if err != nil {
			t.Fatalf("re-decoding %v: %v", v, err)
		}
		if !back.Equal(v) {
			t.Fatalf("re-decoding %v gave %v", v, back)
		}
		// And a write with it yields a fresh dot.
		o := put(New(), nil, "a", "x").Update(v, "a", Write{Value: []byte("y")})
		if o.Clock["a"] <= v["a"] || o.Clock["a"] < 2 {
			t.Fatalf("write with context %v got counter %d", v, o.Clock["a"])
		}
	})
}

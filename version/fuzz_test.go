package version

import (
	"testing"

	"github.com/meridian-kv/meridian/codec"
)

// FuzzUnmarshalObject feeds arbitrary bytes, as a hostile peer or a corrupt
// disk could, through the codec into an Object and uses the result. It lives
// here rather than in codec because codec must not import version.
func FuzzUnmarshalObject(f *testing.F) {
	x := put(New(), nil, "a", "x")
	yz := Merge(put(x, x.Context(), "a", "y"), put(Merge(New(), x), nil, "b", "z"))
	tomb := del(yz, yz.Context(), "c")
	for _, o := range []*Object{New(), x, yz, tomb} {
		b, err := codec.Marshal(o)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x82, 0xa0, 0x80})
	f.Add([]byte{0x82, 0xf6, 0xf6})
	f.Add([]byte{0x9f, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var o Object
		if err := codec.Unmarshal(data, &o); err != nil {
			return
		}
		_ = o.Values()
		_ = o.Context()
		_ = o.IsEmpty()
		_ = Equal(&o, yz)
		_ = Descends(&o, yz)
		_ = Merge(&o, tomb)
		_ = Merge(yz, &o)
		_ = o.Update(x.Context(), "a", Write{Value: []byte("w")})

		enc, err := codec.Marshal(&o)
		if err != nil {
			t.Fatalf("re-encoding a decoded object: %v", err)
		}
		var back Object
		if err := codec.Unmarshal(enc, &back); err != nil {
			t.Fatalf("decoding a re-encoded object: %v", err)
		}
		if !Equal(&o, &back) {
			t.Fatalf("round trip changed the object:\n%+v\n%+v", o, back)
		}
	})
}

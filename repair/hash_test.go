package repair

import (
	"bytes"
	"strings"
	"testing"

	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/version"
)

// TestKeyStateEncodingMatchesCodec: the key state a key hash covers is
// encoded by hand into exactly the bytes codec.Marshal writes for it, so
// every node, of any release since keyStateFormat 1, hashes a key alike.
func TestKeyStateEncodingMatchesCodec(t *testing.T) {
	a := version.New().Update(nil, "east-1", version.Write{Value: []byte("one"), WrittenAt: 7})
	b := version.Merge(a, version.New().Update(nil, strings.Repeat("w", 40), version.Write{Value: bytes.Repeat([]byte("x"), 3000)}))
	gone := b.Update(b.Context(), "central-2", version.Write{Deleted: true})
	zero := &version.Object{Clock: version.Vector{"a": 0, "b": 300, "c": 1 << 40}}
	for _, key := range [][]byte{nil, {}, []byte("k"), bytes.Repeat([]byte("k"), 300)} {
		for _, obj := range []*version.Object{nil, version.New(), a, b, gone, zero} {
			st := keyStateOf(key, obj)
			want, err := codec.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.appendCBOR(nil); !bytes.Equal(got, want) {
				t.Errorf("key %q, object %+v:\nhand  %x\ncodec %x", key, obj, got, want)
			}
		}
	}
}

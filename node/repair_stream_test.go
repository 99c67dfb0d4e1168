package node

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/meridian-kv/meridian/codec"
)

// TestKeyChunksFitAMessage: a want list of any size is cut into chunks
// that each encode under the chunk budget and the array limit, in order,
// with nothing lost.
func TestKeyChunksFitAMessage(t *testing.T) {
	for _, tc := range []struct{ n, size int }{{0, 1}, {1, 64 << 10}, {40000, 12}, {100, 60 << 10}} {
		var keys [][]byte
		for i := range tc.n {
			keys = append(keys, bytes.Repeat([]byte{byte(i)}, tc.size-len(fmt.Sprint(i)))) // distinct by length and fill
			keys[i] = append(keys[i], fmt.Sprint(i)...)
		}
		var got [][]byte
		for _, c := range keyChunks(keys) {
			b, err := codec.Marshal(&repairDiffChunk{Want: c, Last: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(c) == 0 || len(c) > repairChunkItems || (len(c) > 1 && len(b) > repairChunkBytes+64) {
				t.Fatalf("%d keys of %d bytes: a chunk of %d keys encodes to %d bytes", tc.n, tc.size, len(c), len(b))
			}
			got = append(got, c...)
		}
		if len(got) != len(keys) {
			t.Fatalf("%d keys of %d bytes: chunks hold %d", tc.n, tc.size, len(got))
		}
		for i := range got {
			if !bytes.Equal(got[i], keys[i]) {
				t.Fatalf("key %d changed or moved", i)
			}
		}
	}
}

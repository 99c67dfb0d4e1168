package codec

import (
	"github.com/meridian-kv/meridian/internal/fuzzseed"
	"testing"
)

// codecSeeds are encodings of the shapes Meridian's messages take: a
// toarray struct, a keyasint struct, a map, nested arrays at the limit.
func codecSeeds(t *testing.T) map[string][]byte {
	seeds := map[string][]byte{"nested-at-limit": nested(MaxNesting)}
	for name, v := range map[string]any{
		"tuple":      tuple{A: 3, B: []byte("x")},
		"keyed":      keyed{Version: 1, Name: "n"},
		"string-map": map[string]uint64{"east-1~a": 3, "west-2~b": 1},
	} {
		b, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		seeds[name] = b
	}
	return seeds
}

func TestSeedCorpus(t *testing.T) {
	fuzzseed.Check(t, "FuzzUnmarshal", "[]byte", codecSeeds(t))
}

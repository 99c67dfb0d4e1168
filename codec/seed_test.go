package codec

import (
	"fmt"
	"os"
	"path/filepath"
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
	seedCorpus(t, "FuzzUnmarshal", "[]byte", codecSeeds(t))
}

// seedCorpus checks that every seed of a fuzz target is committed as
// testdata/fuzz/<target>/<name>, so `go test` runs each one and `go test
// -fuzz` starts from real messages; run the test with
// MERIDIAN_WRITE_SEEDS=1 to write them after a message format changes.
// typ is the Go type of the target's one argument ("[]byte" or "string").
func seedCorpus(t *testing.T, target, typ string, seeds map[string][]byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	for name, b := range seeds {
		want := fmt.Sprintf("go test fuzz v1\n%s(%q)\n", typ, b)
		path := filepath.Join(dir, name)
		if os.Getenv("MERIDIAN_WRITE_SEEDS") != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("seed %s is missing or stale (%v): run MERIDIAN_WRITE_SEEDS=1 go test -run %s", path, err, t.Name())
		}
	}
}

package consistency

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// parseSeeds are real consistency specifications, as clients send them.
var parseSeeds = map[string][]byte{
	"level":         []byte("LOCAL_QUORUM"),
	"level-lower":   []byte("each_quorum"),
	"per-dc":        []byte("east=2,west=1"),
	"per-dc-spaces": []byte(" central = 1 , east=0 "),
	"empty":         []byte(""),
	"bad-count":     []byte("east=-1"),
	"duplicate":     []byte("east=1,east=2"),
}

func TestSeedCorpus(t *testing.T) {
	seedCorpus(t, "FuzzParse", "string", parseSeeds)
}

// FuzzParse parses arbitrary text as a consistency specification (a level
// or a per-datacenter vector), as a node does with a request's field, and
// checks: nothing panics; a refusal wraps ErrInvalid; what is accepted
// renders (String) to text that parses to the same spec and renders the
// same; and resolving it against a replication map either fails with
// ErrInvalid or asks no datacenter for more acks than it holds replicas.
func FuzzParse(f *testing.F) {
	rep := map[string]int{"east": 3, "west": 2, "central": 1}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q): %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		text := spec.String()
		back, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(%q) = %+v renders as %q, which does not parse: %v", s, spec, text, err)
		}
		if !reflect.DeepEqual(back, spec) || back.String() != text {
			t.Fatalf("Parse(%q) = %+v renders as %q, which parses to %+v", s, spec, text, back)
		}
		for _, local := range []string{"east", "central", "nowhere"} {
			need, err := spec.Resolve(rep, local)
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Resolve(%q): %v does not wrap ErrInvalid", s, err)
				}
				continue
			}
			total := 0
			for dc, n := range need.PerDC {
				if n < 0 || n > rep[dc] {
					t.Fatalf("Resolve(%q) at %s asks %s for %d acks of %d replicas", s, local, dc, n, rep[dc])
				}
				total += n
			}
			if need.Total < 0 || need.Total > 6 {
				t.Fatalf("Resolve(%q) at %s needs %d acks in all, of 6 replicas", s, local, need.Total)
			}
		}
	})
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

package consistency

import (
	"errors"
	"github.com/meridian-kv/meridian/internal/fuzzseed"
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
	fuzzseed.Check(t, "FuzzParse", "string", parseSeeds)
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

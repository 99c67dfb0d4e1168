package store

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/version"
)

type scanned struct {
	tok uint64
	key string
	val string
}

func compareScanned(a, b scanned) int {
	if c := cmp.Compare(a.tok, b.tok); c != 0 {
		return c
	}
	return cmp.Compare(a.key, b.key)
}

// naiveScan is the reference: filter every written key of ks by the token
// bounds, sort by (token, key).
func naiveScan(written map[string][]scanned, ks string, from, to uint64) []scanned {
	var out []scanned
	for _, e := range written[ks] {
		if e.tok >= from && (to == 0 || e.tok < to) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, compareScanned)
	return out
}

func scanAll(t *testing.T, s *Store, ks string, from, to uint64) []scanned {
	t.Helper()
	var out []scanned
	err := s.Scan(ks, from, to, func(tok uint64, key []byte, obj *version.Object) error {
		if want := placement.KeyToken(key); tok != want {
			t.Errorf("Scan gave token %d for key %q, KeyToken says %d", tok, key, want)
		}
		vals := values(obj)
		if len(vals) != 1 {
			t.Fatalf("key %q has values %q", key, vals)
		}
		out = append(out, scanned{tok: tok, key: string(key), val: vals[0]})
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q, %d, %d): %v", ks, from, to, err)
	}
	return out
}

func TestScan(t *testing.T) {
	s := openMem(t)
	// Keyspace names chosen to trip a careless layout: a prefix of another
	// name, a name ending in 0xff (prefix successor carries), a name whose
	// bytes look like a length prefix, and a long name (two-byte uvarint).
	keyspaces := []string{"a", "ab", "b", "a\xff", "\xff\xff", "\x01a", string(bytes.Repeat([]byte("n"), 200))}
	written := map[string][]scanned{}
	for i, ks := range keyspaces {
		for j := range 60 {
			// Some keys are shared by all keyspaces, some are per keyspace.
			key := fmt.Sprintf("key-%d", j)
			if j%2 == 1 {
				key = fmt.Sprintf("key-%d-%d", i, j)
			}
			val := ks + "/" + key
			if _, _, err := s.Update(ks, []byte(key), put("n1", val)); err != nil {
				t.Fatal(err)
			}
			written[ks] = append(written[ks], scanned{tok: placement.KeyToken([]byte(key)), key: key, val: val})
		}
	}

	for _, ks := range keyspaces {
		sorted := naiveScan(written, ks, 0, 0)
		first, mid, last := sorted[0].tok, sorted[len(sorted)/2].tok, sorted[len(sorted)-1].tok
		ranges := []struct {
			name     string
			from, to uint64
		}{
			{"whole ring", 0, 0},
			{"from the first token on", first, 0},
			{"after the first token", first + 1, 0},
			{"up to the first token (exclusive)", 0, first},
			{"exactly the first token", first, first + 1},
			{"exactly the middle token", mid, mid + 1},
			{"first half", 0, mid},
			{"second half", mid, 0},
			{"inner", first + 1, last},
			{"exactly the last token", last, last + 1},
			{"up to the last token (exclusive)", 0, last},
			{"end of the ring", last, 0},
			{"past the last token", last + 1, 0},
			{"the top token only", math.MaxUint64, 0},
			{"all but the top token", 0, math.MaxUint64},
			{"empty [mid, mid)", mid, mid},
			{"from 1", 1, 0},
		}
		for _, r := range ranges {
			t.Run(fmt.Sprintf("%x/%s", ks, r.name), func(t *testing.T) {
				got := scanAll(t, s, ks, r.from, r.to)
				want := naiveScan(written, ks, r.from, r.to)
				if !slices.Equal(got, want) {
					t.Errorf("Scan [%d, %d) = %d entries %v\nwant %d entries %v", r.from, r.to, len(got), got, len(want), want)
				}
			})
		}
		// Tiling: adjacent ranges at every key's token cover the keyspace
		// exactly once, in order.
		var tiled []scanned
		bounds := []uint64{0}
		for i := 5; i < len(sorted); i += 7 {
			bounds = append(bounds, sorted[i].tok)
		}
		bounds = append(bounds, 0)
		for i := 0; i+1 < len(bounds); i++ {
			tiled = append(tiled, scanAll(t, s, ks, bounds[i], bounds[i+1])...)
		}
		if !slices.Equal(tiled, sorted) {
			t.Errorf("keyspace %x: tiled scans over %d bounds differ from one full scan", ks, len(bounds))
		}
	}
	if got := scanAll(t, s, "never-written", 0, 0); len(got) != 0 {
		t.Errorf("scan of an unknown keyspace: %v", got)
	}
}

func TestScanStopsOnError(t *testing.T) {
	s := openMem(t)
	for i := range 10 {
		if _, _, err := s.Update("ks", fmt.Appendf(nil, "k%d", i), put("n1", "v")); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("enough")
	calls := 0
	err := s.Scan("ks", 0, 0, func(uint64, []byte, *version.Object) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 3 {
		t.Errorf("Scan returned %v after %d calls, want the fn's error after 3", err, calls)
	}
}

func TestScanWrappedRange(t *testing.T) {
	s := openMem(t)
	err := s.Scan("ks", 10, 5, func(uint64, []byte, *version.Object) error { return nil })
	if !errors.Is(err, ErrWrappedRange) {
		t.Errorf("Scan [10, 5): %v, want ErrWrappedRange", err)
	}
}

// TestScanKeepsKeys: fn may retain the key slice it is given.
func TestScanKeepsKeys(t *testing.T) {
	s := openMem(t)
	for i := range 50 {
		if _, _, err := s.Update("ks", fmt.Appendf(nil, "key-%03d", i), put("n1", "v")); err != nil {
			t.Fatal(err)
		}
	}
	var kept [][]byte
	if err := s.Scan("ks", 0, 0, func(_ uint64, key []byte, _ *version.Object) error {
		kept = append(kept, key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, k := range kept {
		seen[string(k)] = true
	}
	if len(seen) != 50 {
		t.Errorf("retained keys hold %d distinct values, want 50", len(seen))
	}
}

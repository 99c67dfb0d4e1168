package store

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/version"
)

// hintT0 is the injected clock of the hint tests.
var hintT0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// written returns a one-sibling object: val written by actor, blind.
func written(actor, val string) *version.Object {
	return version.New().Update(nil, actor, version.Write{Value: []byte(val)})
}

// addHint stores a hint with default limits and fails the test unless it
// was stored.
func addHint(t testing.TB, s *Store, target, ks, key string, obj *version.Object, now time.Time) {
	t.Helper()
	stored, err := s.AddHint(target, ks, []byte(key), obj, nil, now, HintLimits{})
	if err != nil || !stored {
		t.Fatalf("AddHint(%s, %s, %s): stored=%v err=%v", target, ks, key, stored, err)
	}
}

// hintsOf returns every pending hint of target.
func hintsOf(t testing.TB, s *Store, target string) []Hint {
	t.Helper()
	var out []Hint
	if err := s.Hints(target, 0, func(h Hint) error { out = append(out, h); return nil }); err != nil {
		t.Fatalf("Hints(%s): %v", target, err)
	}
	return out
}

// checkHintStats fails the test unless the in-memory stats agree with a
// scan of the disk.
func checkHintStats(t testing.TB, s *Store) {
	t.Helper()
	onDisk, err := s.scanHintStats()
	if err != nil {
		t.Fatal(err)
	}
	if got := s.HintStats(); !maps.Equal(got, onDisk) {
		t.Errorf("HintStats = %v, but the disk holds %v", got, onDisk)
	}
}

func TestAddHintMerges(t *testing.T) {
	s := openMem(t)
	trace := bytes.Repeat([]byte{1}, 24)
	a, b := written("n1", "a"), written("n2", "b") // concurrent
	if stored, err := s.AddHint("t1", "ks", []byte("k"), a, trace, hintT0, HintLimits{}); err != nil || !stored {
		t.Fatalf("first AddHint: stored=%v err=%v", stored, err)
	}
	later := hintT0.Add(time.Minute)
	if stored, err := s.AddHint("t1", "ks", []byte("k"), b, bytes.Repeat([]byte{2}, 24), later, HintLimits{}); err != nil || !stored {
		t.Fatalf("second AddHint: stored=%v err=%v", stored, err)
	}
	hs := hintsOf(t, s, "t1")
	if len(hs) != 1 {
		t.Fatalf("%d hints, want one merged hint", len(hs))
	}
	h := hs[0]
	if got := values(h.Object); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("hint values %q, want the siblings [a b]", got)
	}
	if !version.Equal(h.Object, version.Merge(a, b)) {
		t.Errorf("hint object %+v is not the merge of both writes", h.Object)
	}
	if !h.Created.Equal(hintT0) {
		t.Errorf("Created = %v, want the first store's %v", h.Created, hintT0)
	}
	if !bytes.Equal(h.Trace, trace) {
		t.Errorf("Trace = %x, want the first store's %x", h.Trace, trace)
	}
	if h.Target != "t1" || h.Keyspace != "ks" || string(h.Key) != "k" {
		t.Errorf("hint names %q/%q/%q", h.Target, h.Keyspace, h.Key)
	}

	// Adding what the hint already holds (a retry) changes nothing.
	before := s.HintStats()
	if stored, err := s.AddHint("t1", "ks", []byte("k"), a, nil, later, HintLimits{}); err != nil || !stored {
		t.Fatalf("re-adding a held object: stored=%v err=%v", stored, err)
	}
	if got := s.HintStats(); !maps.Equal(got, before) || got["t1"].Count != 1 {
		t.Errorf("HintStats after re-adding = %v, want %v with one hint", got, before)
	}
	checkHintStats(t, s)

	// A write that saw "a" and "b" supersedes both in the hint.
	c := version.Merge(a, b)
	c = c.Update(c.Context(), "n1", version.Write{Value: []byte("c")})
	addHint(t, s, "t1", "ks", "k", c, later)
	if got := values(hintsOf(t, s, "t1")[0].Object); !slices.Equal(got, []string{"c"}) {
		t.Errorf("after a superseding write the hint holds %q, want [c]", got)
	}
	checkHintStats(t, s)
}

func TestHintsOrderAndIsolation(t *testing.T) {
	s := openMem(t)
	// Targets and keyspaces that are prefixes of one another.
	type ref struct{ ks, key string }
	var want []ref
	for _, target := range []string{"n", "n1", "n10"} {
		for _, ks := range []string{"a", "ab", "b"} {
			for i := range 5 {
				key := fmt.Sprintf("%s-%s-%d", target, ks, i)
				addHint(t, s, target, ks, key, written("c", key), hintT0)
				if target == "n1" {
					want = append(want, ref{ks, key})
				}
			}
		}
	}
	// Key order: keyspace (length-prefixed), then ring token.
	slices.SortFunc(want, func(x, y ref) int {
		if c := cmp.Compare(len(x.ks), len(y.ks)); c != 0 {
			return c
		}
		if c := strings.Compare(x.ks, y.ks); c != 0 {
			return c
		}
		return cmp.Compare(placement.KeyToken([]byte(x.key)), placement.KeyToken([]byte(y.key)))
	})
	var got []ref
	for _, h := range hintsOf(t, s, "n1") {
		if h.Target != "n1" || !slices.Equal(values(h.Object), []string{string(h.Key)}) {
			t.Fatalf("Hints(n1) returned %q for %q holding %q", h.Key, h.Target, values(h.Object))
		}
		got = append(got, ref{h.Keyspace, string(h.Key)})
	}
	if !slices.Equal(got, want) {
		t.Errorf("Hints(n1) order\n got %v\nwant %v", got, want)
	}
	if n := len(hintsOf(t, s, "nobody")); n != 0 {
		t.Errorf("%d hints for a target that has none", n)
	}
	stats := s.HintStats()
	if len(stats) != 3 || stats["n"].Count != 15 || stats["n1"].Count != 15 || stats["n10"].Count != 15 {
		t.Errorf("HintStats = %v, want 15 hints for each of n, n1, n10", stats)
	}

	// limit, and a fn error stops the walk.
	var first []string
	if err := s.Hints("n1", 4, func(h Hint) error { first = append(first, string(h.Key)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(first) != 4 || first[0] != want[0].key || first[3] != want[3].key {
		t.Errorf("Hints with limit 4 returned %q", first)
	}
	stop := errors.New("stop")
	calls := 0
	if err := s.Hints("n1", 0, func(Hint) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("Hints with a failing fn: err=%v after %d calls, want stop after 1", err, calls)
	}

	// fn may deliver (DeleteHint) as it goes; the walk sees its snapshot.
	seen := 0
	err := s.Hints("n1", 0, func(h Hint) error {
		seen++
		deleted, err := s.DeleteHint(h)
		if err == nil && !deleted {
			err = fmt.Errorf("hint %q not deleted", h.Key)
		}
		return err
	})
	if err != nil || seen != 15 {
		t.Fatalf("delivering during Hints: %v after %d hints", err, seen)
	}
	stats = s.HintStats()
	if _, ok := stats["n1"]; ok || stats["n"].Count != 15 || stats["n10"].Count != 15 {
		t.Errorf("after delivering n1's hints HintStats = %v", stats)
	}
	checkHintStats(t, s)
}

func TestDeleteHintOnlyIfUnchanged(t *testing.T) {
	s := openMem(t)
	addHint(t, s, "t1", "ks", "k", written("n1", "a"), hintT0)
	h := hintsOf(t, s, "t1")[0]

	// While h is being delivered, newer data is merged into the hint.
	addHint(t, s, "t1", "ks", "k", written("n2", "b"), hintT0.Add(time.Second))
	if deleted, err := s.DeleteHint(h); err != nil || deleted {
		t.Fatalf("DeleteHint of a hint changed since it was read: deleted=%v err=%v", deleted, err)
	}
	hs := hintsOf(t, s, "t1")
	if len(hs) != 1 || !slices.Equal(values(hs[0].Object), []string{"a", "b"}) {
		t.Fatalf("after the refused delete the hints are %+v, want one holding [a b]", hs)
	}

	// Delivered again, unchanged: deleted.
	if deleted, err := s.DeleteHint(hs[0]); err != nil || !deleted {
		t.Fatalf("DeleteHint of an unchanged hint: deleted=%v err=%v", deleted, err)
	}
	if n := len(hintsOf(t, s, "t1")); n != 0 {
		t.Errorf("%d hints left after delivery", n)
	}
	if stats := s.HintStats(); len(stats) != 0 {
		t.Errorf("HintStats after delivery = %v, want empty", stats)
	}
	if deleted, err := s.DeleteHint(hs[0]); err != nil || deleted {
		t.Errorf("deleting a delivered hint again: deleted=%v err=%v", deleted, err)
	}
	checkHintStats(t, s)
}

func TestHintByteBound(t *testing.T) {
	s := openMem(t)
	addHint(t, s, "t1", "ks", "k0", written("n1", "v0"), hintT0)
	one := s.HintStats()["t1"].Bytes
	// Room for exactly two hints of this size (keys and values of the same
	// lengths), not three.
	lim := HintLimits{MaxBytesPerTarget: 2 * one}
	if stored, err := s.AddHint("t1", "ks", []byte("k1"), written("n1", "v1"), nil, hintT0, lim); err != nil || !stored {
		t.Fatalf("AddHint up to the bound: stored=%v err=%v", stored, err)
	}
	before := s.HintStats()
	if before["t1"] != (HintStat{Count: 2, Bytes: 2 * one}) {
		t.Fatalf("HintStats = %v, want 2 hints of %d bytes", before, one)
	}

	refused := []struct {
		name string
		key  string
		obj  *version.Object
	}{
		{"a new hint", "k2", written("n1", "v2")},
		{"growing a held hint", "k0", written("n2", "v3")},
	}
	for _, r := range refused {
		stored, err := s.AddHint("t1", "ks", []byte(r.key), r.obj, nil, hintT0, lim)
		if err != nil || stored {
			t.Errorf("%s past the bound: stored=%v err=%v, want stored=false", r.name, stored, err)
		}
		if got := s.HintStats(); !maps.Equal(got, before) {
			t.Errorf("%s past the bound changed HintStats from %v to %v", r.name, before, got)
		}
	}
	for _, h := range hintsOf(t, s, "t1") {
		if len(h.Object.Siblings) != 1 {
			t.Errorf("after the refusals hint %q holds %q", h.Key, values(h.Object))
		}
	}
	// Re-adding what is held needs no room.
	if stored, err := s.AddHint("t1", "ks", []byte("k0"), written("n1", "v0"), nil, hintT0, lim); err != nil || !stored {
		t.Errorf("re-adding a held object at the bound: stored=%v err=%v", stored, err)
	}
	// The bound is per target.
	if stored, err := s.AddHint("t2", "ks", []byte("k2"), written("n1", "v2"), nil, hintT0, lim); err != nil || !stored {
		t.Errorf("another target at t1's bound: stored=%v err=%v", stored, err)
	}
	// An object bigger than the bound on its own is refused.
	big := written("n1", strings.Repeat("x", 4096))
	if stored, err := s.AddHint("t3", "ks", []byte("k"), big, nil, hintT0, HintLimits{MaxBytesPerTarget: 1024}); err != nil || stored {
		t.Errorf("a hint bigger than the bound: stored=%v err=%v", stored, err)
	}
	if _, ok := s.HintStats()["t3"]; ok {
		t.Error("a refused hint shows in HintStats")
	}
	checkHintStats(t, s)
}

// TestHintByteBoundConcurrent is P7's byte bound under concurrent adds:
// however they interleave, a target never holds more than the bound.
func TestHintByteBoundConcurrent(t *testing.T) {
	s := openMem(t)
	addHint(t, s, "t", "ks", "probe", written("w", "v00-00"), hintT0)
	one := s.HintStats()["t"].Bytes
	lim := HintLimits{MaxBytesPerTarget: 10*one + one/2}
	var wg sync.WaitGroup
	var stored, refused atomic.Int64
	for w := range 4 {
		wg.Go(func() {
			for i := range 8 {
				key := fmt.Sprintf("kee%d%d", w, i) // as long as "probe"
				ok, err := s.AddHint("t", "ks", []byte(key), written("w", fmt.Sprintf("v%02d-%02d", w, i)), nil, hintT0, lim)
				if err != nil {
					t.Error(err)
				}
				if ok {
					stored.Add(1)
				} else {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	st := s.HintStats()["t"]
	if st.Bytes > lim.MaxBytesPerTarget || st.Count != 10 || stored.Load() != 9 || refused.Load() != 23 {
		t.Errorf("HintStats %+v after %d stored and %d refused, bound %d bytes (%d per hint)", st, stored.Load(), refused.Load(), lim.MaxBytesPerTarget, one)
	}
	checkHintStats(t, s)
}

func TestExpireHints(t *testing.T) {
	s := openMem(t)
	addHint(t, s, "t1", "ks", "old", written("n1", "a"), hintT0)
	addHint(t, s, "t1", "ks", "new", written("n1", "b"), hintT0.Add(2*time.Hour))
	addHint(t, s, "t2", "ks", "old", written("n1", "c"), hintT0)
	// Merging keeps the first store's age: fresh data added to an old hint
	// expires with it.
	addHint(t, s, "t2", "ks", "merged", written("n1", "d"), hintT0.Add(30*time.Minute))
	addHint(t, s, "t2", "ks", "merged", written("n2", "e"), hintT0.Add(3*time.Hour))

	// Nothing is old enough yet.
	dropped, err := s.ExpireHints(hintT0.Add(3*time.Hour), 3*time.Hour)
	if err != nil || len(dropped) != 0 {
		t.Fatalf("ExpireHints at 3h: dropped=%v err=%v, want none", dropped, err)
	}
	dropped, err = s.ExpireHints(hintT0.Add(3*time.Hour+45*time.Minute), 3*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"t1": 1, "t2": 2}; !maps.Equal(dropped, want) {
		t.Errorf("ExpireHints dropped %v, want %v", dropped, want)
	}
	if hs := hintsOf(t, s, "t1"); len(hs) != 1 || string(hs[0].Key) != "new" {
		t.Errorf("t1 keeps %+v, want only the hint created at 2h", hs)
	}
	if n := len(hintsOf(t, s, "t2")); n != 0 {
		t.Errorf("t2 keeps %d hints", n)
	}
	if stats := s.HintStats(); len(stats) != 1 || stats["t1"].Count != 1 {
		t.Errorf("HintStats after expiry = %v", stats)
	}
	checkHintStats(t, s)

	// maxAge 0 means the default (3h), not "everything".
	if dropped, err := s.ExpireHints(hintT0.Add(4*time.Hour), 0); err != nil || len(dropped) != 0 {
		t.Errorf("ExpireHints with maxAge 0 at 2h of age: dropped=%v err=%v", dropped, err)
	}
	if dropped, err := s.ExpireHints(hintT0.Add(6*time.Hour), 0); err != nil || dropped["t1"] != 1 {
		t.Errorf("ExpireHints with maxAge 0 at 4h of age: dropped=%v err=%v", dropped, err)
	}
	if stats := s.HintStats(); len(stats) != 0 {
		t.Errorf("HintStats after expiring everything = %v", stats)
	}
}

// TestExpireHintsManyBatches expires more hints than one batch holds,
// spread over many lock stripes.
func TestExpireHintsManyBatches(t *testing.T) {
	s := openMem(t)
	const n = 2*expireChunk + 7
	for i := range n {
		addHint(t, s, "t", "ks", fmt.Sprint(i), written("n1", "v"), hintT0)
	}
	dropped, err := s.ExpireHints(hintT0.Add(DefaultHintMaxAge+time.Nanosecond), 0)
	if err != nil || dropped["t"] != n {
		t.Fatalf("dropped=%v err=%v, want %d", dropped, err, n)
	}
	if stats := s.HintStats(); len(stats) != 0 {
		t.Errorf("HintStats = %v", stats)
	}
}

func TestHintStatsSurviveReopen(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("db", &Options{FS: fs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		addHint(t, s, fmt.Sprintf("t%d", i%3), "ks", fmt.Sprint(i), written("n1", strings.Repeat("v", i)), hintT0)
	}
	for _, h := range hintsOf(t, s, "t1")[:3] {
		if _, err := s.DeleteHint(h); err != nil {
			t.Fatal(err)
		}
	}
	want := s.HintStats()
	if want["t0"].Count != 7 || want["t1"].Count != 4 || want["t2"].Count != 6 {
		t.Fatalf("HintStats before reopen = %v", want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddHint("t0", "ks", []byte("k"), written("n1", "v"), nil, hintT0, HintLimits{}); !errors.Is(err, ErrClosed) {
		t.Errorf("AddHint after Close: %v", err)
	}
	s, err = Open("db", &Options{FS: fs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.HintStats(); !maps.Equal(got, want) {
		t.Errorf("HintStats after reopen = %v, want %v", got, want)
	}
	if n := len(hintsOf(t, s, "t1")); n != 4 {
		t.Errorf("%d hints for t1 after reopen, want 4", n)
	}
}

func TestHintValidation(t *testing.T) {
	s := openMem(t)
	obj := written("n1", "v")
	tooLong := bytes.Repeat([]byte("k"), MaxKeyLen+1)
	tests := []struct {
		name       string
		target, ks string
		key        []byte
		obj        *version.Object
		trace      []byte
		now        time.Time
		lim        HintLimits
		want       error  // errors.Is, or nil
		msg        string // in the message, when want is nil
	}{
		{name: "empty target", ks: "ks", key: []byte("k"), obj: obj, now: hintT0, want: ErrEmptyTarget},
		{name: "empty keyspace", target: "t", key: []byte("k"), obj: obj, now: hintT0, want: ErrEmptyKeyspace},
		{name: "key too large", target: "t", ks: "ks", key: tooLong, obj: obj, now: hintT0, want: ErrKeyTooLarge},
		{name: "nil object", target: "t", ks: "ks", key: []byte("k"), now: hintT0, want: errEmptyHint},
		{name: "empty object", target: "t", ks: "ks", key: []byte("k"), obj: version.New(), now: hintT0, want: errEmptyHint},
		{name: "short trace", target: "t", ks: "ks", key: []byte("k"), obj: obj, trace: []byte{1}, now: hintT0, msg: "trace id"},
		{name: "zero time", target: "t", ks: "ks", key: []byte("k"), obj: obj, msg: "1970"},
		{name: "negative limits", target: "t", ks: "ks", key: []byte("k"), obj: obj, now: hintT0, lim: HintLimits{MaxAge: -1, MaxBytesPerTarget: -1}, msg: "MaxAge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored, err := s.AddHint(tt.target, tt.ks, tt.key, tt.obj, tt.trace, tt.now, tt.lim)
			if stored || err == nil || !strings.HasPrefix(err.Error(), "store: ") {
				t.Fatalf("AddHint: stored=%v err=%v, want a store error", stored, err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("AddHint: %v, want %v", err, tt.want)
			}
			if tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("AddHint: %q does not mention %q", err, tt.msg)
			}
		})
	}
	if err := (HintLimits{MaxAge: -1, MaxBytesPerTarget: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "MaxBytesPerTarget") {
		t.Errorf("Validate reports only %v", err)
	}
	if err := s.Hints("", 0, nil); !errors.Is(err, ErrEmptyTarget) {
		t.Errorf("Hints of the empty target: %v", err)
	}
	if _, err := s.DeleteHint(Hint{Keyspace: "ks", Key: []byte("k"), Object: obj}); !errors.Is(err, ErrEmptyTarget) {
		t.Errorf("DeleteHint without target: %v", err)
	}
	if _, err := s.DeleteHint(Hint{Target: "t", Key: []byte("k"), Object: obj}); !errors.Is(err, ErrEmptyKeyspace) {
		t.Errorf("DeleteHint without keyspace: %v", err)
	}
	if stats := s.HintStats(); len(stats) != 0 {
		t.Errorf("refused hints show in HintStats: %v", stats)
	}
	// Empty keys are keys; an empty (non-nil) trace is no trace.
	if stored, err := s.AddHint("t", "ks", nil, obj, []byte{}, hintT0, HintLimits{}); err != nil || !stored {
		t.Errorf("hint for the empty key: stored=%v err=%v", stored, err)
	}
	if hs := hintsOf(t, s, "t"); len(hs) != 1 || hs[0].Trace != nil || len(hs[0].Key) != 0 {
		t.Errorf("hints = %+v", hs)
	}
}

func mustEncodeHint(t testing.TB, rec *hintRecord) []byte {
	t.Helper()
	if rec.Ref != nil {
		return encodeHintRef(rec.Created, rec.Trace, rec.Ref)
	}
	v, err := encodeHint(rec)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCorruptHint: an undecodable hint is reported as ErrCorrupt by every
// call that reads it, counted at Open, and dropped by ExpireHints (it can
// never be delivered); a hint key whose target does not parse is left out
// of the stats and dropped too.
func TestCorruptHint(t *testing.T) {
	key := []byte("k")
	k := hintKey("t", "ks", placement.KeyToken(key), key)
	good := mustEncodeHint(t, &hintRecord{Created: hintT0.UnixNano(), Object: written("n1", "v")})
	tests := []struct {
		name  string
		value []byte
	}{
		{name: "empty", value: []byte{}},
		{name: "unknown format", value: append([]byte{9}, good[1:]...)},
		{name: "not cbor", value: []byte{hintFormatV1, 0xff, 0xfe}},
		{name: "truncated", value: good[:len(good)-3]},
		{name: "trailing bytes", value: append(slices.Clone(good), 0)},
		{name: "no object", value: mustEncodeHint(t, &hintRecord{Created: hintT0.UnixNano()})},
		{name: "object not an object", value: append([]byte{hintFormatV1}, 0x83, 0x01, 0xf6, 0x01)},
		{name: "no creation time", value: mustEncodeHint(t, &hintRecord{Object: written("n1", "v")})},
		{name: "bad trace", value: mustEncodeHint(t, &hintRecord{Created: 1, Trace: []byte{1, 2}, Object: written("n1", "v")})},
		{name: "reference without a clock", value: append([]byte{hintFormatRef}, good[1:]...)},
		{name: "reference with an empty clock", value: mustEncodeHint(t, &hintRecord{Created: 1, Ref: version.Vector{}})},
		{name: "reference with a bad trace", value: mustEncodeHint(t, &hintRecord{Created: 1, Trace: []byte{1}, Ref: version.Vector{"n1": 1}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := vfs.NewMem()
			s, err := Open("db", &Options{FS: fs, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.db.Set(k, tt.value, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.db.Set([]byte{kindHint, 0xff}, []byte("junk"), nil); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s, err = Open("db", &Options{FS: fs, Logger: quiet})
			if err != nil {
				t.Fatalf("Open with a corrupt hint: %v", err)
			}
			defer s.Close()
			if st := s.HintStats()["t"]; st.Count != 1 || st.Bytes != int64(len(k)+len(tt.value)) {
				t.Errorf("HintStats[t] = %+v, want the corrupt hint counted", st)
			}
			err = s.Hints("t", 0, func(Hint) error { return nil })
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `"t", keyspace "ks" key "k"`) {
				t.Errorf("Hints: %v, want ErrCorrupt naming the hint", err)
			}
			if _, err := s.AddHint("t", "ks", key, written("n2", "w"), nil, hintT0, HintLimits{}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("AddHint: %v, want ErrCorrupt", err)
			}
			if _, err := s.DeleteHint(Hint{Target: "t", Keyspace: "ks", Key: key, Object: written("n1", "v")}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("DeleteHint: %v, want ErrCorrupt", err)
			}
			dropped, err := s.ExpireHints(hintT0, time.Hour)
			if err != nil || !maps.Equal(dropped, map[string]int{"t": 1}) {
				t.Errorf("ExpireHints: dropped=%v err=%v, want the corrupt hint of t", dropped, err)
			}
			if stats := s.HintStats(); len(stats) != 0 {
				t.Errorf("HintStats after dropping = %v", stats)
			}
			if n, err := s.scanHintStats(); err != nil || len(n) != 0 {
				t.Errorf("hints left on disk: %v %v", n, err)
			}
			if _, closer, err := s.db.Get([]byte{kindHint, 0xff}); err == nil {
				closer.Close()
				t.Error("the hint with an unparseable key was not dropped")
			}
		})
	}
}

func TestHintRoundTrip(t *testing.T) {
	rec := &hintRecord{Created: hintT0.UnixNano(), Trace: bytes.Repeat([]byte{7}, 24), Object: version.Merge(written("n1", "a"), written("n2", "b"))}
	got, err := decodeHint(mustEncodeHint(t, rec))
	if err != nil {
		t.Fatal(err)
	}
	if got.Created != rec.Created || !bytes.Equal(got.Trace, rec.Trace) || !version.Equal(got.Object, rec.Object) || got.Ref != nil {
		t.Errorf("round trip of %+v gave %+v", rec, got)
	}
	ref := &hintRecord{Created: hintT0.UnixNano(), Trace: rec.Trace, Ref: rec.Object.Clock}
	if got, err = decodeHint(mustEncodeHint(t, ref)); err != nil {
		t.Fatal(err)
	}
	if got.Created != ref.Created || !bytes.Equal(got.Trace, ref.Trace) || got.Object != nil || !got.Ref.Equal(ref.Ref) {
		t.Errorf("round trip of %+v gave %+v", ref, got)
	}
}

// FuzzDecodeHint: decoding arbitrary bytes returns a hint or an error,
// never panics, and what decodes re-encodes to an equal hint.
func FuzzDecodeHint(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{hintFormatV1})
	f.Add(mustEncodeHint(f, &hintRecord{Created: 1, Object: written("n1", "v")}))
	f.Add(mustEncodeHint(f, &hintRecord{Created: 1, Trace: make([]byte, 24), Object: written("n1", "v")}))
	f.Add(mustEncodeHint(f, &hintRecord{Created: 1, Ref: version.Vector{"n1": 3, "n2": 1}}))
	f.Add(mustEncodeHint(f, &hintRecord{Created: 1, Trace: make([]byte, 24), Ref: version.Vector{"n1": 1}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeHint(b)
		if _, herr := decodeHintHeader(b); err == nil && herr != nil {
			t.Fatalf("hint decodes but its header does not: %v", herr)
		}
		if err != nil {
			return
		}
		again, err := decodeHint(mustEncodeHint(t, rec))
		if err != nil {
			t.Fatalf("re-encoded hint does not decode: %v", err)
		}
		if again.Created != rec.Created || !bytes.Equal(again.Trace, rec.Trace) || !version.Equal(again.Object, rec.Object) || !again.Ref.Equal(rec.Ref) || (again.Ref == nil) != (rec.Ref == nil) {
			t.Fatalf("round trip changed %+v into %+v", rec, again)
		}
	})
}

// TestHintSyncErrorFailsStore: a hint write whose fsync fails is not
// acknowledged, and the store stops serving, as for objects.
func TestHintSyncErrorFailsStore(t *testing.T) {
	var armed atomic.Bool
	s, err := Open("db", &Options{FS: walSyncsFailing(&armed), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addHint(t, s, "t", "ks", "before", written("n1", "v"), hintT0)
	h := hintsOf(t, s, "t")[0]
	armed.Store(true)
	if stored, err := s.AddHint("t", "ks", []byte("k"), written("n1", "v"), nil, hintT0, HintLimits{}); stored || !errors.Is(err, ErrFailed) {
		t.Errorf("AddHint during a failing fsync: stored=%v err=%v, want ErrFailed", stored, err)
	}
	armed.Store(false)
	if deleted, err := s.DeleteHint(h); deleted || !errors.Is(err, ErrFailed) {
		t.Errorf("DeleteHint after the failure: deleted=%v err=%v", deleted, err)
	}
	if err := s.Hints("t", 0, func(Hint) error { return nil }); !errors.Is(err, ErrFailed) {
		t.Errorf("Hints after the failure: %v", err)
	}
	if _, err := s.ExpireHints(hintT0, time.Hour); !errors.Is(err, ErrFailed) {
		t.Errorf("ExpireHints after the failure: %v", err)
	}
	if st := s.HintStats()["t"]; st.Count != 1 {
		t.Errorf("HintStats counts the unacknowledged hint: %+v", st)
	}
}

// passSignal lets goroutines wait for the end of another's next pass.
type passSignal struct {
	mu   sync.Mutex
	next chan struct{} // closed when the pass in progress ends
}

func newPassSignal() *passSignal { return &passSignal{next: make(chan struct{})} }

// wait returns a channel closed when the pass in progress ends.
func (p *passSignal) wait() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next
}

// done ends a pass.
func (p *passSignal) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.next)
	p.next = make(chan struct{})
}

// hintOp is an acknowledged AddHint or DeleteHint of the crash test.
type hintOp struct {
	target, key string
	obj         *version.Object
}

type hintOpLog struct {
	mu  sync.Mutex
	ops []hintOp
}

func (l *hintOpLog) add(op hintOp) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops = append(l.ops, op)
}

func (l *hintOpLog) snapshot() []hintOp {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ops)
}

var crashTargets = []string{"n1", "n2"}

// checkHintClone opens a store on a crash clone and checks P8 for hints:
// every acknowledged add is still held (the hint holds at least its
// object) or was delivered (a DeleteHint of an object holding it had
// begun: one in flight at the crash may have reached the disk, which is
// fine since a node deletes only delivered hints); no acknowledged delete
// left any of its values behind; every hint decodes and holds only values
// that were added. It returns how many hints the clone holds.
func checkHintClone(t *testing.T, fs vfs.FS, adds, dels, delivering []hintOp, issued map[string]bool) (held int) {
	t.Helper()
	s, err := Open("db", &Options{FS: fs, Logger: quiet})
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer s.Close()
	type ref struct{ target, key string }
	present := map[ref]*version.Object{}
	for _, target := range crashTargets {
		hs := hintsOf(t, s, target) // fails on a torn or corrupt hint
		if st := s.HintStats()[target]; st.Count != len(hs) {
			t.Errorf("HintStats[%s] = %+v, but %d hints are stored", target, st, len(hs))
		}
		for _, h := range hs {
			present[ref{target, string(h.Key)}] = h.Object
			for _, v := range values(h.Object) {
				if !issued[v] {
					t.Errorf("hint %s/%s holds %q, which was never added", target, h.Key, v)
				}
			}
		}
	}
	delivered := map[ref][]*version.Object{}
	for _, d := range delivering {
		r := ref{d.target, d.key}
		delivered[r] = append(delivered[r], d.obj)
	}
	for _, d := range dels {
		r := ref{d.target, d.key}
		if p := present[r]; p != nil {
			for _, v := range values(d.obj) {
				if slices.Contains(values(p), v) {
					t.Errorf("%q of %s/%s is back after its hint was deleted (acknowledged)", v, d.target, d.key)
				}
			}
		}
	}
	var lost []hintOp
	for _, a := range adds {
		r := ref{a.target, a.key}
		if p := present[r]; p != nil && version.Descends(p, a.obj) {
			continue
		}
		if slices.ContainsFunc(delivered[r], func(d *version.Object) bool { return version.Descends(d, a.obj) }) {
			continue
		}
		lost = append(lost, a)
	}
	if len(lost) > 0 {
		t.Errorf("%d acknowledged hints lost, e.g. %s/%s %q", len(lost), lost[0].target, lost[0].key, values(lost[0].obj))
	}
	return len(present)
}

// TestCrashKeepsAcknowledgedHints is P8 for hinted handoff: writers add
// hints (merging into held ones) while a deliverer deletes them, and
// crash clones are taken mid-way. After each crash every acknowledged hint
// is held or was delivered, and no delivered hint is half there.
func TestCrashKeepsAcknowledgedHints(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 0x68696e7473))
	fs := vfs.NewCrashableMem()
	s, err := Open("db", &Options{FS: fs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	const workers, each, keys = 6, 40, 16
	total := workers * each
	issued := map[string]bool{}
	for w := range workers {
		for i := range each {
			issued[fmt.Sprintf("v%d-%d", w, i)] = true
		}
	}
	var adds, dels, delivering hintOpLog
	reached := make(chan int, total)
	// Every 10 adds an adder waits for the deliverer to finish a pass, so
	// deliveries really interleave with adds whatever the scheduler does.
	passes := newPassSignal()
	delivererDone := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				target := crashTargets[(w+i)%len(crashTargets)]
				key := fmt.Sprintf("k%02d", (w*5+i)%keys)
				// A fresh actor per add: every add is a new sibling.
				obj := written(fmt.Sprintf("a%d-%d", w, i), fmt.Sprintf("v%d-%d", w, i))
				stored, err := s.AddHint(target, "ks", []byte(key), obj, nil, hintT0, HintLimits{})
				if err != nil || !stored {
					t.Errorf("AddHint: stored=%v err=%v", stored, err)
				} else {
					adds.add(hintOp{target, key, obj})
				}
				reached <- 1
				if i%10 == 9 {
					select {
					case <-passes.wait():
					case <-delivererDone:
					}
				}
			}
		})
	}
	stop := make(chan struct{})
	var deliverer sync.WaitGroup
	var refusedDeletes atomic.Int64
	deliverer.Go(func() {
		defer close(delivererDone)
		for {
			passes.done()
			for _, target := range crashTargets {
				select {
				case <-stop:
					return
				default:
				}
				err := s.Hints(target, 4, func(h Hint) error {
					delivering.add(hintOp{h.Target, string(h.Key), h.Object})
					deleted, err := s.DeleteHint(h)
					if deleted {
						dels.add(hintOp{h.Target, string(h.Key), h.Object})
					} else if err == nil {
						refusedDeletes.Add(1)
					}
					return err
				})
				if err != nil {
					t.Errorf("delivering: %v", err)
					return
				}
			}
		}
	})

	var clones []*vfs.MemFS
	var addsBefore, delsBefore, deliveringBy [][]hintOp
	crash := func() {
		// Acknowledgements recorded now returned before the clone starts;
		// deliveries recorded after it include every one begun before.
		addsBefore = append(addsBefore, adds.snapshot())
		delsBefore = append(delsBefore, dels.snapshot())
		clones = append(clones, fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rng}))
		deliveringBy = append(deliveringBy, delivering.snapshot())
	}
	cloneAt := []int{40, 120, 200}
	done := 0
	for range total {
		done += <-reached
		for len(clones) < len(cloneAt) && done >= cloneAt[len(clones)] {
			crash()
		}
	}
	wg.Wait()
	close(stop)
	deliverer.Wait()
	crash()
	checkHintStats(t, s)

	vacuous := true
	for i, c := range clones {
		held := checkHintClone(t, c, addsBefore[i], delsBefore[i], deliveringBy[i], issued)
		t.Logf("crash %d: %d adds and %d deletes acknowledged before it, %d hints held after it", i, len(addsBefore[i]), len(delsBefore[i]), held)
		if len(delsBefore[i]) > 0 && held > 0 {
			vacuous = false
		}
	}
	t.Logf("%d deletes refused because the hint changed during delivery", refusedDeletes.Load())
	if vacuous {
		t.Error("no crash came after acknowledged deletes with hints still pending: the test is vacuous")
	}
	if n := len(addsBefore[len(addsBefore)-1]); n != total {
		t.Errorf("%d of %d hints were acknowledged", n, total)
	}
}

// TestHintCrashCheckDetectsUnsyncedStore: the hint crash check has teeth:
// a store that acknowledges hints before syncing them loses some.
func TestHintCrashCheckDetectsUnsyncedStore(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s, err := Open("db", &Options{FS: fs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.wo = pebble.NoSync
	const n = 30
	for i := range n {
		addHint(t, s, "n1", "ks", fmt.Sprint(i), written("n1", "v"), hintT0)
	}
	c, err := Open("db", &Options{FS: fs.CrashClone(vfs.CrashCloneCfg{}), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	held := len(hintsOf(t, c, "n1"))
	if held == n {
		t.Fatal("an unsynced store lost no hint in a crash: the crash check cannot detect missing fsyncs")
	}
	t.Logf("unsynced store lost %d of %d acknowledged hints", n-held, n)
}

// TestExpireHintsFuncReportsWhatItDropped checks the callback names each
// dropped hint's target, keyspace and token, so the node can mark the
// key's range for repair.
func TestExpireHintsFuncReportsWhatItDropped(t *testing.T) {
	s := openMem(t)
	addHint(t, s, "t1", "ks", "old", written("n1", "a"), hintT0)
	addHint(t, s, "t1", "ks", "new", written("n1", "b"), hintT0.Add(2*time.Hour))
	var got []DroppedHint
	dropped, err := s.ExpireHintsFunc(hintT0.Add(3*time.Hour+time.Minute), 3*time.Hour, func(d DroppedHint) { got = append(got, d) })
	if err != nil || dropped["t1"] != 1 {
		t.Fatalf("dropped %v, err %v", dropped, err)
	}
	want := DroppedHint{Target: "t1", Keyspace: "ks", Token: placement.KeyToken([]byte("old"))}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("callback got %+v, want %+v", got, want)
	}
}

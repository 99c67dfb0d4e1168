package store

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/version"
)

// TestHintPresenceCountsEveryHint runs random hint traffic — write-ahead
// hints, added hints, clears, deliveries one by one and in batches,
// expiry, reopening — and after every step checks the presence table
// against the hints on disk: each stored hint's slot is counted (a slot at
// zero would make a write replace a hint instead of merging into it), and
// the table counts exactly the hints stored (a delete left counted would
// only cost lookups, but shows a path that does not keep it).
func TestHintPresenceCountsEveryHint(t *testing.T) {
	fs := vfs.NewMem()
	open := func() *Store {
		s, err := Open("db", &Options{FS: fs, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	defer func() { s.Close() }()
	rng := rand.New(rand.NewPCG(7, 11))
	targets := []string{"t1", "t2", "t3"}
	now := hintT0
	objs := map[string]*version.Object{} // the last object written per key
	key := func() string { return fmt.Sprintf("k%d", rng.IntN(12)) }
	for step := range 600 {
		now = now.Add(time.Second)
		k := key()
		var what string
		switch op := rng.IntN(9); op {
		case 0, 1, 2:
			what = "update queued"
			obj, _, _, err := s.UpdateQueued("ks", []byte(k), blind(fmt.Sprintf("a%d", rng.IntN(3)), fmt.Sprint(step)),
				Queue{Targets: targets[:1+rng.IntN(3)], Now: now})
			if err != nil {
				t.Fatal(err)
			}
			objs[k] = obj
		case 3:
			what = "add hint"
			obj := version.New().Update(nil, "h", version.Write{Value: []byte(fmt.Sprint(step))})
			if _, err := s.AddHint(targets[rng.IntN(3)], "ks", []byte(k), obj, nil, now, HintLimits{}); err != nil {
				t.Fatal(err)
			}
		case 4, 5:
			what = "clear hints"
			if obj := objs[k]; obj != nil {
				if _, err := s.ClearHints("ks", []byte(k), obj, targets[:1+rng.IntN(3)]); err != nil {
					t.Fatal(err)
				}
			}
		case 6:
			what = "deliver"
			var batch []Hint
			target := targets[rng.IntN(3)]
			if err := s.Hints(target, 4, func(h Hint) error { batch = append(batch, h); return nil }); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(2) == 0 {
				for _, h := range batch {
					if _, err := s.DeleteHint(h); err != nil {
						t.Fatal(err)
					}
				}
			} else if _, err := s.DeleteHints(batch); err != nil {
				t.Fatal(err)
			}
		case 7:
			what = "expire"
			if _, err := s.ExpireHints(now, time.Duration(20+rng.IntN(100))*time.Second); err != nil {
				t.Fatal(err)
			}
		case 8:
			what = "reopen"
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open()
		}
		checkHintPresence(t, s, fmt.Sprintf("step %d (%s)", step, what))
	}
}

func checkHintPresence(t *testing.T, s *Store, when string) {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindHint}, UpperBound: []byte{kindHint + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	stored := 0
	for valid := it.First(); valid; valid = it.Next() {
		stored++
		if !s.present.maybe(it.Key()) {
			t.Fatalf("%s: a hint is stored under %q but its presence slot is zero", when, it.Key())
		}
	}
	var counted uint64
	for i := range s.present.slots {
		counted += uint64(s.present.slots[i].Load())
	}
	if counted != uint64(stored) {
		t.Fatalf("%s: the presence table counts %d hints, %d are stored", when, counted, stored)
	}
}

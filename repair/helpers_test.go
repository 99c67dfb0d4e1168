package repair

import (
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/version"
)

// Replay a failing randomized run with
//
//	go test ./repair -run TestName -seed=N
//
// or MERIDIAN_SEED=N. Without either, the tests run a fixed range of seeds,
// so they are deterministic.
var seedFlag = flag.Uint64("seed", 0, "replay one randomized run of the repair property tests with this seed")

func testSeeds(t testing.TB, n int) []uint64 {
	t.Helper()
	if *seedFlag != 0 {
		return []uint64{*seedFlag}
	}
	if s := os.Getenv("MERIDIAN_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("MERIDIAN_SEED=%q: %v", s, err)
		}
		return []uint64{seed}
	}
	if testing.Short() {
		n = max(n/5, 1)
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	return seeds
}

// forSeeds runs f once per seed as a subtest named by the seed, so a
// failure prints the seed to replay.
func forSeeds(t *testing.T, n int, f func(t *testing.T, rng *rand.Rand)) {
	for _, seed := range testSeeds(t, n) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Logf("seed %d (replay with -seed=%d)", seed, seed)
			f(t, newRand(seed))
		})
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// memSource is an in-memory RangeSource: keys in token order, as the store
// keeps them.
type memSource struct {
	objs   map[string]*version.Object
	sorted []memEntry // cache of objs in (token, key) order; nil when stale
	scans  int
}

type memEntry struct {
	tok uint64
	key []byte
	obj *version.Object
}

func newMemSource() *memSource { return &memSource{objs: map[string]*version.Object{}} }

func (m *memSource) set(key string, obj *version.Object) {
	if obj == nil {
		delete(m.objs, key)
	} else {
		m.objs[key] = obj
	}
	m.sorted = nil
}

func (m *memSource) clone() *memSource {
	return &memSource{objs: maps.Clone(m.objs)}
}

func (m *memSource) entries() []memEntry {
	if m.sorted == nil {
		m.sorted = make([]memEntry, 0, len(m.objs))
		for k, o := range m.objs {
			m.sorted = append(m.sorted, memEntry{placement.KeyToken([]byte(k)), []byte(k), o})
		}
		slices.SortFunc(m.sorted, func(a, b memEntry) int {
			return cmp.Or(cmp.Compare(a.tok, b.tok), bytes.Compare(a.key, b.key))
		})
	}
	return m.sorted
}

func (m *memSource) Scan(ks string, from, to uint64, fn func(token uint64, key []byte, obj *version.Object) error) error {
	m.scans++
	es := m.entries()
	i := sort.Search(len(es), func(i int) bool { return es[i].tok >= from })
	for ; i < len(es) && (to == 0 || es[i].tok < to); i++ {
		if err := fn(es[i].tok, es[i].key, es[i].obj); err != nil {
			return err
		}
	}
	return nil
}

// Object generation. Each replica mints dots with its own actor, as a
// replica coordinating writes does, so dots stay unique.

func randValue(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

func write(rng *rand.Rand) version.Write { return writeSized(rng, 4, 16) }

// writeSized is a write of a random value of lo to hi-1 bytes.
func writeSized(rng *rand.Rand, lo, hi int) version.Write {
	return version.Write{Value: randValue(rng, lo+rng.IntN(hi-lo)), WrittenAt: rng.Int64N(1 << 40)}
}

// populate fills src with n keys written once by actor "base".
func populate(rng *rand.Rand, src *memSource, n int) {
	for i := range n {
		k := fmt.Sprintf("key-%d-%d", i, rng.Uint32())
		src.set(k, version.New().Update(nil, "base", write(rng)))
	}
}

// mutation kinds applied to one replica (actor names it).
const (
	mutNewKey = iota
	mutUpdate
	mutConcurrent
	mutDelete
	mutDrop
	mutCosmetic // changes WrittenAt and Trace only: not a difference
	numMutations
)

// mutate applies one random mutation to src as replica actor and reports
// whether it changed src's canonical contents.
func mutate(rng *rand.Rand, src *memSource, actor string) bool {
	return mutateWith(rng, src, actor, write)
}

// mutateWith is mutate with writes made by write.
func mutateWith(rng *rand.Rand, src *memSource, actor string, write func(*rand.Rand) version.Write) bool {
	keys := slices.Sorted(maps.Keys(src.objs))
	kind := rng.IntN(numMutations)
	if len(keys) == 0 {
		kind = mutNewKey
	}
	var k string
	if kind != mutNewKey {
		k = keys[rng.IntN(len(keys))]
	}
	o := src.objs[k]
	switch kind {
	case mutNewKey:
		src.set(fmt.Sprintf("new-%s-%d", actor, rng.Uint64()), version.New().Update(nil, actor, write(rng)))
	case mutUpdate:
		src.set(k, o.Update(o.Context(), actor, write(rng)))
	case mutConcurrent:
		src.set(k, o.Update(nil, actor, write(rng)))
	case mutDelete:
		src.set(k, o.Update(o.Context(), actor, version.Write{Deleted: true, WrittenAt: rng.Int64N(1 << 40)}))
	case mutDrop:
		src.set(k, nil)
	case mutCosmetic:
		c := &version.Object{Clock: o.Clock.Clone(), Siblings: slices.Clone(o.Siblings)}
		for i := range c.Siblings {
			c.Siblings[i].WrittenAt++
			c.Siblings[i].Trace = randValue(rng, 24)
		}
		c.Clock["zero-counter-actor"] = 0 // an entry version.Equal ignores
		src.set(k, c)
		return false
	}
	return true
}

func tokenOf(k string) uint64 { return placement.KeyToken([]byte(k)) }

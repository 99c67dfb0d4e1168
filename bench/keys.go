package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Distribution names a key chooser.
type Distribution string

// The key choosers.
const (
	// Uniform picks every record with the same probability.
	Uniform Distribution = "uniform"
	// Zipfian is YCSB's scrambled zipfian chooser: popularity follows a
	// zipfian law with constant 0.99, and the popular items are spread
	// over the key space by a hash instead of being the lowest keys.
	Zipfian Distribution = "zipfian"
)

// ZipfianConstant is YCSB's default skew.
const ZipfianConstant = 0.99

// KeyChooser picks a record number in [0, records). It keeps no state
// between calls: callers pass their own random source, so one chooser
// serves many goroutines.
type KeyChooser interface {
	Next(r *rand.Rand) uint64
}

// NewKeyChooser returns the chooser d over records records.
func NewKeyChooser(d Distribution, records uint64) (KeyChooser, error) {
	if records == 0 {
		return nil, fmt.Errorf("bench: no records to choose from: set a record count above 0")
	}
	switch d {
	case Uniform, "":
		return uniform{n: records}, nil
	case Zipfian:
		return newScrambledZipfian(records), nil
	}
	return nil, fmt.Errorf("bench: unknown distribution %q: use uniform or zipfian", d)
}

type uniform struct{ n uint64 }

func (u uniform) Next(r *rand.Rand) uint64 { return r.Uint64N(u.n) }

// YCSB's ScrambledZipfianGenerator draws from a zipfian over a fixed, very
// large item count (so the popularity curve does not depend on the record
// count) and hashes the item onto the records. zetan is zeta(itemCount,
// 0.99), precomputed by YCSB.
const (
	scrambledItemCount = 10_000_000_000
	scrambledZetan     = 26.46902820178302
)

// zipfian is the generator of Gray et al., "Quickly Generating
// Billion-Record Synthetic Databases" (SIGMOD 1994), as YCSB implements it,
// over items [0, n).
type zipfian struct {
	n                   float64
	theta, alpha, zetan float64
	eta, half           float64
}

func newZipfian(n uint64, theta, zetan float64) zipfian {
	zeta2 := zeta(2, theta)
	return zipfian{
		n: float64(n), theta: theta, alpha: 1 / (1 - theta), zetan: zetan,
		eta:  (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta2/zetan),
		half: 1 + math.Pow(0.5, theta),
	}
}

func zeta(n int, theta float64) float64 {
	var s float64
	for i := 1; i <= n; i++ {
		s += 1 / math.Pow(float64(i), theta)
	}
	return s
}

func (z zipfian) next(r *rand.Rand) uint64 {
	u := r.Float64()
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < z.half {
		return 1
	}
	v := uint64(z.n * math.Pow(z.eta*u-z.eta+1, z.alpha))
	if v >= uint64(z.n) {
		v = uint64(z.n) - 1
	}
	return v
}

type scrambledZipfian struct {
	records uint64
	z       zipfian
}

func newScrambledZipfian(records uint64) scrambledZipfian {
	return scrambledZipfian{records: records, z: newZipfian(scrambledItemCount, ZipfianConstant, scrambledZetan)}
}

func (s scrambledZipfian) Next(r *rand.Rand) uint64 {
	return fnv64(s.z.next(r)) % s.records
}

// fnv64 is YCSB's Utils.fnvhash64: FNV-1a over the value's eight bytes,
// low byte first, made non-negative as Java's Math.abs would.
func fnv64(v uint64) uint64 {
	h := uint64(0xCBF29CE484222325)
	for range 8 {
		h ^= v & 0xff
		h *= 1099511628211
		v >>= 8
	}
	if int64(h) < 0 {
		h = uint64(-int64(h))
	}
	return h
}

// Key is the key of record i: YCSB's "user" prefix and a fixed-width
// number, so keys sort in record order and all have the same length.
func Key(i uint64) []byte {
	return fmt.Appendf(nil, "user%012d", i)
}

package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
)

const draws = 200_000

func counts(t *testing.T, d Distribution, records uint64) []int {
	t.Helper()
	kc, err := NewKeyChooser(d, records)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	c := make([]int, records)
	for range draws {
		k := kc.Next(r)
		if k >= records {
			t.Fatalf("%s chose record %d of %d", d, k, records)
		}
		c[k]++
	}
	return c
}

// TestUniformCoversEveryRecordEvenly: each of 1000 records gets its
// expected 200 draws within ±5 standard deviations (√200 ≈ 14).
func TestUniformCoversEveryRecordEvenly(t *testing.T) {
	c := counts(t, Uniform, 1000)
	for i, n := range c {
		if n < 200-70 || n > 200+70 {
			t.Errorf("record %d drawn %d times, want 200±70", i, n)
		}
	}
}

// TestZipfianIsSkewedAndScrambled: YCSB's scrambled zipfian (0.99) gives
// its hottest item 1/zeta ≈ 3.8 % of draws and the hottest 10 % of records
// about 30 % of them (less than a plain zipfian over the records would: the
// popularity curve runs over 10^10 items hashed onto the records, as in
// YCSB), and the hot records are spread over the key
// space rather than being the lowest record numbers.
func TestZipfianIsSkewedAndScrambled(t *testing.T) {
	const records = 1000
	c := counts(t, Zipfian, records)
	sorted := slices.Clone(c)
	slices.Sort(sorted)
	slices.Reverse(sorted)
	if top := float64(sorted[0]) / draws; top < 0.03 || top > 0.06 {
		t.Errorf("hottest record has %.1f %% of draws, want about 3.8 %%", top*100)
	}
	hot := 0
	for _, n := range sorted[:records/10] {
		hot += n
	}
	if share := float64(hot) / draws; share < 0.25 {
		t.Errorf("hottest 10 %% of records have %.1f %% of draws, want over 25 %%", share*100)
	}
	if share := float64(hot) / draws; share > 0.4 {
		t.Errorf("hottest 10 %% of records have %.1f %% of draws: too skewed for 0.99", share*100)
	}
	low := 0
	for _, n := range c[:records/10] {
		low += n
	}
	if float64(low) > 0.5*float64(hot) {
		t.Errorf("records 0–99 have %d draws of the hottest 10 %%'s %d: not scrambled", low, hot)
	}
	// Uniform for contrast: its hottest 10 % hold little more than 10 %.
	u := counts(t, Uniform, records)
	slices.Sort(u)
	slices.Reverse(u)
	uhot := 0
	for _, n := range u[:records/10] {
		uhot += n
	}
	if 2*uhot >= hot {
		t.Errorf("uniform hottest 10 %% = %d draws, zipfian %d: the skew test cannot tell them apart", uhot, hot)
	}
}

// TestZipfianMatchesYCSBConstants checks the underlying generator against
// YCSB's own figures for 0.99: zeta(2) and the first item's share.
func TestZipfianMatchesYCSBConstants(t *testing.T) {
	z := newZipfian(scrambledItemCount, ZipfianConstant, scrambledZetan)
	r := rand.New(rand.NewPCG(3, 4))
	first := 0
	for range draws {
		if z.next(r) == 0 {
			first++
		}
	}
	want := draws / scrambledZetan // P(item 0) = 1/zetan
	if f := float64(first); f < 0.95*want || f > 1.05*want {
		t.Errorf("item 0 drawn %d times, want about %.0f", first, want)
	}
}

func TestWorkloadMixes(t *testing.T) {
	for _, tc := range []struct {
		w    Workload
		want map[Op]float64 // share
	}{
		{WorkloadA, map[Op]float64{OpRead: 0.5, OpUpdate: 0.5}},
		{WorkloadB, map[Op]float64{OpRead: 0.95, OpUpdate: 0.05}},
		{WorkloadC, map[Op]float64{OpRead: 1}},
		{WorkloadF, map[Op]float64{OpRead: 0.5, OpReadModifyWrite: 0.5}},
		{WorkloadWrite, map[Op]float64{OpUpdate: 1}},
	} {
		t.Run(string(tc.w), func(t *testing.T) {
			g, err := NewGenerator(Spec{Workload: tc.w, Records: 100, ValueSize: 10})
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(5, 6))
			got := map[Op]int{}
			for range draws {
				op, _ := g.Next(r)
				got[op]++
			}
			for op, n := range got {
				if _, ok := tc.want[op]; !ok {
					t.Errorf("workload %s drew %d × %s, which it should never", tc.w, n, op)
				}
			}
			for op, share := range tc.want {
				if s := float64(got[op]) / draws; s < share-0.01 || s > share+0.01 {
					t.Errorf("workload %s: %s is %.3f of ops, want %.2f±0.01", tc.w, op, s, share)
				}
			}
		})
	}
}

func TestParseWorkload(t *testing.T) {
	for in, want := range map[string]Workload{"a": WorkloadA, "F": WorkloadF, "write": WorkloadWrite, "w": WorkloadWrite} {
		if got, err := ParseWorkload(in); err != nil || got != want {
			t.Errorf("ParseWorkload(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseWorkload("E"); err == nil {
		t.Error("ParseWorkload(E) accepted a workload that is not implemented")
	}
}

func TestKeysSortInRecordOrder(t *testing.T) {
	if a, b := string(Key(9)), string(Key(10)); a >= b || len(a) != len(b) {
		t.Errorf("Key(9)=%q, Key(10)=%q: want equal length, in order", a, b)
	}
}

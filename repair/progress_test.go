package repair

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/codec"
)

func sampleProgress() Progress {
	p := NewProgress([2]string{"us-east", "eu-west"}, "users")
	p.Segments = 64
	p.PassStarted = utc("2025-03-10T02:00:00Z").Add(123456789)
	p.Done = []Range{{From: 0, To: 1 << 40}, {From: 1 << 62}}
	p.Pass = RangeStats{KeysCompared: 1000, KeysFixed: 3, BytesSent: 4096}
	p.LastFullStarted = utc("2025-03-01T02:00:00Z")
	p.LastFullCompleted = utc("2025-03-02T03:00:00Z")
	p.LastPass = RangeStats{KeysCompared: 99, KeysFixed: 1, BytesSent: 10}
	p.Total = RangeStats{KeysCompared: 1099, KeysFixed: 4, BytesSent: 4106}
	return p
}

func TestProgressRoundTrip(t *testing.T) {
	for _, p := range []Progress{sampleProgress(), NewProgress([2]string{"a", "a"}, "ks")} {
		b, err := EncodeProgress(p)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := EncodeProgress(p)
		if !bytes.Equal(b, again) {
			t.Fatal("encoding is not deterministic")
		}
		got, err := DecodeProgress(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, p)
		}
	}
	if p := NewProgress([2]string{"z", "a"}, "ks"); p.Pair != [2]string{"a", "z"} {
		t.Errorf("pair not canonical: %v", p.Pair)
	}
}

func TestDecodeProgressRejects(t *testing.T) {
	good := sampleProgress()
	enc := func(mod func(w *progressWire)) []byte {
		b, _ := EncodeProgress(good)
		var w progressWire
		if err := codec.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		mod(&w)
		out, err := codec.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for name, b := range map[string][]byte{
		"empty":           nil,
		"garbage":         []byte{0xff, 0x00},
		"future format":   enc(func(w *progressWire) { w.Format = 2 }),
		"no keyspace":     enc(func(w *progressWire) { w.Keyspace = "" }),
		"no pair":         enc(func(w *progressWire) { w.Pair[1] = "" }),
		"wrapping range":  enc(func(w *progressWire) { w.Done = []Range{{From: 10, To: 5}} }),
		"whole ring done": enc(func(w *progressWire) { w.Done = []Range{{}} }),
		"segments":        enc(func(w *progressWire) { w.Segments = MaxSegments + 1 }),
		"negative stats":  enc(func(w *progressWire) { w.Total.BytesSent = -1 }),
	} {
		if _, err := DecodeProgress(b); !errors.Is(err, ErrBadProgress) {
			t.Errorf("%s: %v, want ErrBadProgress", name, err)
		}
	}
}

func TestProgressRecord(t *testing.T) {
	p := NewProgress(eastWest, "ks")
	p.Segments = 2
	segs := Segments(2)
	t0 := utc("2025-03-10T02:00:00Z")
	task := func(r Range) Task { return Task{Kind: TaskPass, Range: r} }
	if err := p.Record(task(segs[1]), RangeStats{KeysFixed: 2}, t0.Add(time.Minute), t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if p.Fraction() != 0.5 {
		t.Fatalf("fraction %v after half the ring", p.Fraction())
	}
	// A task that started earlier (run concurrently) moves PassStarted back.
	if err := p.Record(task(segs[0]), RangeStats{KeysFixed: 1}, t0, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !p.LastFullStarted.Equal(t0) || !p.LastFullCompleted.Equal(t0.Add(3*time.Minute)) || p.LastPass.KeysFixed != 3 || p.Fraction() != 0 {
		t.Fatalf("after the pass: %+v", p)
	}
	if err := p.Record(task(Range{From: 5, To: 5}), RangeStats{}, t0, t0); !errors.Is(err, ErrBadRange) {
		t.Fatalf("empty range recorded: %v", err)
	}
}

func TestDirtySet(t *testing.T) {
	d := NewDirtySet(8)
	segs := Segments(8)
	t0 := utc("2025-03-10T00:00:00Z")
	// Two drops in one segment make one entry with the union of the spans;
	// a range across a boundary marks both segments.
	d.Add("ks", [2]string{"b", "a"}, Range{From: segs[3].From + 1, To: segs[3].From + 2}, t0, t0.Add(time.Hour))
	d.Add("ks", eastWest, Range{From: segs[3].From + 9, To: segs[3].From + 10}, t0.Add(-time.Hour), t0.Add(30*time.Minute))
	d.Add("ks", [2]string{"a", "b"}, Range{From: segs[3].To - 1, To: segs[4].From + 1}, t0.Add(2*time.Hour), t0.Add(3*time.Hour))
	if d.Len() != 3 {
		t.Fatalf("%d entries, want 3: %+v", d.Len(), d.Entries())
	}
	got := d.For([2]string{"a", "b"}, "ks")
	if len(got) != 2 || got[0].Range != segs[3] || !got[0].From.Equal(t0) || !got[0].To.Equal(t0.Add(3*time.Hour)) || got[1].Range != segs[4] {
		t.Fatalf("entries of a↔b: %+v", got)
	}
	if err := d.Add("", eastWest, segs[0], t0, t0); err == nil {
		t.Error("entry without a keyspace accepted")
	}
	b, err := EncodeDirtySet(d)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeDirtySet(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Entries(), d.Entries()) {
		t.Fatalf("round trip: %+v vs %+v", back.Entries(), d.Entries())
	}
	// A range that covers only part of a segment clears nothing of it.
	if n := d.Clear([2]string{"a", "b"}, "ks", Range{From: segs[3].From, To: segs[3].From + 100}, t0.Add(4*time.Hour)); n != 0 {
		t.Fatalf("partial cover cleared %d", n)
	}
	if n := d.Clear([2]string{"b", "a"}, "ks", Range{From: segs[3].From, To: segs[5].From}, t0.Add(4*time.Hour)); n != 2 {
		t.Fatalf("cleared %d, want 2", n)
	}
	for name, b := range map[string][]byte{"garbage": {0x01}, "nil": nil} {
		if _, err := DecodeDirtySet(b); !errors.Is(err, ErrBadProgress) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzDecodeProgress: no input makes the checkpoint decoder panic, and what
// it accepts encodes back to bytes it accepts again.
func FuzzDecodeProgress(f *testing.F) {
	b, _ := EncodeProgress(sampleProgress())
	f.Add(b)
	b, _ = EncodeProgress(NewProgress(eastWest, "ks"))
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodeProgress(data)
		if err != nil {
			return
		}
		out, err := EncodeProgress(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeProgress(out); err != nil {
			t.Fatalf("re-decoding what was accepted: %v", err)
		}
	})
}

func FuzzDecodeDirtySet(f *testing.F) {
	d := NewDirtySet(16)
	d.Add("ks", eastWest, Segments(16)[3], utc("2025-03-10T00:00:00Z"), utc("2025-03-10T01:00:00Z"))
	b, _ := EncodeDirtySet(d)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeDirtySet(data)
		if err != nil {
			return
		}
		out, err := EncodeDirtySet(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeDirtySet(out); err != nil {
			t.Fatalf("re-decoding what was accepted: %v", err)
		}
	})
}

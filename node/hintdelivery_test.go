package node

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/version"
	"github.com/meridian-kv/meridian/wan"
)

// hintTestSeed is the seed of a randomized test: MERIDIAN_SEED if set (to
// replay a failure), else a fixed one, so runs are deterministic.
func hintTestSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(1)
	if s := os.Getenv("MERIDIAN_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("MERIDIAN_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (replay with MERIDIAN_SEED=%d)", seed, seed)
	return seed
}

// testHint returns a hint of ks/key holding one sibling of valueLen bytes.
func testHint(ks, key string, valueLen int) store.Hint {
	obj := version.New().Update(nil, "east-1", version.Write{Value: make([]byte, valueLen), WrittenAt: 1})
	return store.Hint{Target: "west-1", Keyspace: ks, Key: []byte(key), Object: obj, Created: time.Unix(1, 0)}
}

// sendAll drains every batch the round allows now.
func sendAll(d *hintDelivery) []*hintBatch {
	var out []*hintBatch
	for {
		b, ok := d.Next()
		if !ok {
			return out
		}
		out = append(out, b)
	}
}

func keysOf(b *hintBatch) string {
	var ks []string
	for _, h := range b.hints {
		ks = append(ks, string(h.Key))
	}
	return b.keyspace + ":" + strings.Join(ks, ",")
}

// TestHintBatchesAreCut checks where batches end: at a keyspace change, at
// the hint count, at the byte bound; and that a hint larger than the byte
// bound goes alone.
func TestHintBatchesAreCut(t *testing.T) {
	small := hintSize(testHint("a", "k0", 10))
	d := newHintDelivery(deliveryLimits{BatchHints: 3, BatchBytes: 4*small + small/2, InFlight: 100})
	for i := range 5 {
		d.Add(testHint("a", fmt.Sprintf("a%d", i), 10)) // 3 + 2
	}
	d.Add(testHint("b", "b0", 10)) // keyspace change
	d.Add(testHint("b", "big", 10*small))
	d.Add(testHint("b", "b1", 10))
	d.End(nil)
	var got []string
	for _, b := range sendAll(d) {
		got = append(got, keysOf(b))
		if b.bytes > 4*small+small/2 && len(b.hints) > 1 {
			t.Errorf("batch %s of %d bytes exceeds the bound", keysOf(b), b.bytes)
		}
	}
	want := []string{"a:a0,a1,a2", "a:a3,a4", "b:b0", "b:big", "b:b1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("batches %q, want %q", got, want)
	}

	// A hint no message can carry is set aside; those after it go on.
	f := newHintDelivery(deliveryLimits{MaxHintBytes: 3 * small})
	f.Add(testHint("a", "k0", 10))
	f.Add(testHint("a", "huge", 3*small))
	f.Add(testHint("a", "k1", 10))
	f.End(nil)
	if sent := sendAll(f); len(sent) != 1 || keysOf(sent[0]) != "a:k0,k1" {
		t.Fatalf("sent %d batches, want one of k0,k1", len(sent))
	}
	if tl := f.TooLarge(); len(tl) != 1 || string(tl[0].Key) != "huge" {
		t.Fatalf("TooLarge %v, want the huge hint", tl)
	}
}

// TestHintDeliveryWindow checks the window: at most InFlight batches out,
// reading stops while a complete batch waits for a slot, and an answer
// frees a slot for the next batch.
func TestHintDeliveryWindow(t *testing.T) {
	d := newHintDelivery(deliveryLimits{BatchHints: 2, InFlight: 2})
	var out []*hintBatch
	i := 0
	for d.WantHints() {
		d.Add(testHint("a", fmt.Sprintf("k%d", i), 1))
		i++
		out = append(out, sendAll(d)...)
	}
	if len(out) != 2 || i != 6 {
		t.Fatalf("%d batches sent after reading %d hints; want 2 sent and one batch (2 hints) read ahead", len(out), i)
	}
	if hs := d.Acked(out[0]); len(hs) != 2 || string(hs[0].Key) != "k0" {
		t.Fatalf("Acked returned %v, want k0 and k1", hs)
	}
	if next := sendAll(d); len(next) != 1 || keysOf(next[0]) != "a:k4,k5" {
		t.Fatalf("after an answer, sent %d batches, want k4,k5", len(next))
	}
	if !d.WantHints() {
		t.Fatal("nothing waits for a slot, but the round reads no more hints")
	}
	d.End(nil)
	if d.Done() {
		t.Fatal("done with two batches in flight")
	}
}

// TestHintDeliveryStopsAtFirstFailure: after a failure nothing more is
// sent, batches in flight are still settled (an acknowledged one may be
// deleted), and the round ends when they are.
func TestHintDeliveryStopsAtFirstFailure(t *testing.T) {
	d := newHintDelivery(deliveryLimits{BatchHints: 1, InFlight: 2})
	for i := range 5 {
		d.Add(testHint("a", fmt.Sprintf("k%d", i), 1))
	}
	out := sendAll(d)
	if len(out) != 2 {
		t.Fatalf("%d batches in flight, want 2", len(out))
	}
	cause := errors.New("target went away")
	d.Failed(out[0], cause)
	if more := sendAll(d); len(more) != 0 {
		t.Fatalf("sent %d batches after a failure", len(more))
	}
	if d.WantHints() || d.Done() {
		t.Fatalf("after a failure with a batch in flight: WantHints %v Done %v, want false, false", d.WantHints(), d.Done())
	}
	if hs := d.Acked(out[1]); len(hs) != 1 || string(hs[0].Key) != "k1" {
		t.Fatalf("the batch in flight was acknowledged; Acked returned %v", hs)
	}
	if !d.Done() || !errors.Is(d.Err(), cause) || d.Acknowledged() != 1 {
		t.Fatalf("Done %v Err %v Acknowledged %d", d.Done(), d.Err(), d.Acknowledged())
	}
	// Reading that fails ends the round too.
	r := newHintDelivery(deliveryLimits{})
	r.Add(testHint("a", "k", 1))
	r.End(store.ErrCorrupt)
	if !r.Done() || !errors.Is(r.Err(), store.ErrCorrupt) || len(sendAll(r)) != 0 {
		t.Fatalf("a read error: Done %v Err %v", r.Done(), r.Err())
	}
}

// TestHintDeliveryModel drives rounds with a target that answers in random
// order and sometimes fails, against a naive model: every hint read is
// sent at most once, in store order, within the limits; the hints to
// delete are exactly those of acknowledged batches; without failures every
// hint is acknowledged; the window is never exceeded.
func TestHintDeliveryModel(t *testing.T) {
	seed := hintTestSeed(t)
	rng := rand.New(rand.NewPCG(seed, 7))
	for round := range 300 {
		lim := deliveryLimits{BatchHints: 1 + rng.IntN(8), BatchBytes: 200 + rng.IntN(2000), InFlight: 1 + rng.IntN(4)}
		failRate := []float64{0, 0, 0.05, 0.3}[rng.IntN(4)]
		var hints []store.Hint
		for i := range rng.IntN(60) {
			ks := []string{"a", "b"}[min(i/20, 1)] // keyspaces in store order
			hints = append(hints, testHint(ks, fmt.Sprintf("k%03d", i), rng.IntN(300)))
		}
		d := newHintDelivery(lim)
		var inFlight []*hintBatch
		sent, deleted := map[string]bool{}, map[string]bool{}
		lastSent := -1
		failed := false
		check := func(what string, ok bool) {
			if !ok {
				t.Fatalf("seed %d round %d (%+v): %s", seed, round, lim, what)
			}
		}
		send := func() {
			for {
				b, ok := d.Next()
				if !ok {
					return
				}
				check("a batch after a failure", !failed)
				check("batch out of order", b.seq == lastSent+1)
				lastSent = b.seq
				check("empty batch", len(b.hints) > 0)
				check("too many hints in a batch", len(b.hints) <= lim.BatchHints)
				check("too many bytes in a batch", len(b.hints) == 1 || b.bytes <= lim.BatchBytes)
				for _, h := range b.hints {
					check("hint of another keyspace in the batch", h.Keyspace == b.keyspace)
					check("hint sent twice", !sent[string(h.Key)])
					sent[string(h.Key)] = true
				}
				inFlight = append(inFlight, b)
				check("window exceeded", len(inFlight) <= lim.InFlight)
			}
		}
		answer := func() {
			i := rng.IntN(len(inFlight))
			b := inFlight[i]
			inFlight = append(inFlight[:i], inFlight[i+1:]...)
			if rng.Float64() < failRate {
				failed = true
				d.Failed(b, errors.New("lost"))
				return
			}
			for _, h := range d.Acked(b) {
				deleted[string(h.Key)] = true
			}
		}
		for _, h := range hints {
			if d.Err() != nil {
				break
			}
			d.Add(h)
			send()
			for !d.WantHints() && d.Err() == nil {
				check("waiting with nothing in flight", len(inFlight) > 0)
				answer()
				send()
			}
		}
		d.End(nil)
		send()
		for !d.Done() {
			check("not done with nothing in flight", len(inFlight) > 0)
			answer()
			send()
		}
		check("done with batches in flight", len(inFlight) == 0)
		for k := range deleted {
			check("deleted a hint never sent", sent[k])
		}
		if !failed {
			check(fmt.Sprintf("no failure but %d of %d hints acknowledged", len(deleted), len(hints)), len(deleted) == len(hints) && d.Acknowledged() == len(hints))
		} else {
			check("failure not reported", d.Err() != nil)
		}
	}
}

// TestHintSizeBoundsTheEncoding checks hintSize against the real encoding
// of random hints, and that a full batch fits a frame with room to spare.
func TestHintSizeBoundsTheEncoding(t *testing.T) {
	seed := hintTestSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	for range 500 {
		obj := version.New()
		for range 1 + rng.IntN(4) {
			actor := fmt.Sprintf("node-%d", rng.IntN(5))
			w := version.Write{Value: make([]byte, rng.IntN(1<<rng.IntN(17))), Deleted: rng.IntN(5) == 0, WrittenAt: rng.Int64()}
			if rng.IntN(2) == 0 {
				w.Trace = make([]byte, 24)
			}
			if rng.IntN(2) == 0 {
				obj = obj.Update(obj.Context(), actor, w) // supersedes
			} else {
				obj = version.Merge(obj, version.New().Update(nil, actor, w)) // a sibling
			}
		}
		h := store.Hint{Keyspace: "ks", Key: make([]byte, rng.IntN(300)), Object: obj}
		b, err := codec.Marshal(hintItem{Key: h.Key, Object: h.Object})
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > hintSize(h) {
			t.Fatalf("seed %d: hint encodes to %d bytes, hintSize says at most %d", seed, len(b), hintSize(h))
		}
	}
	// A batch at the default bounds, as one frame.
	lim := defaultDeliveryLimits
	d := newHintDelivery(lim)
	for i := 0; d.WantHints(); i++ {
		d.Add(testHint("default", fmt.Sprintf("key-%06d", i), 8000))
	}
	b, _ := d.Next()
	items := make([]hintItem, len(b.hints))
	for i, h := range b.hints {
		items[i] = hintItem{Key: h.Key, Object: h.Object}
	}
	env, err := wan.NewEnvelope(typeHintDeliver, &hintDeliver{Keyspace: b.keyspace, Items: items})
	if err != nil {
		t.Fatal(err)
	}
	frame, err := codec.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	if len(frame) > lim.BatchBytes+4096 || len(frame) > wan.DefaultMaxFrame/2 {
		t.Fatalf("a batch of %d hints makes a %d-byte frame; its bound is %d", len(b.hints), len(frame), lim.BatchBytes)
	}
	t.Logf("a batch of %d hints of 8000 bytes: %d-byte frame", len(b.hints), len(frame))
}

// FuzzHintDeliver decodes arbitrary payloads as a hint batch and checks
// them as the receiver does: never a panic, and what is accepted is at
// most store.MaxMergeBatch valid objects that encode and decode to the
// same objects.
func FuzzHintDeliver(f *testing.F) {
	obj := version.New().Update(nil, "east-1", version.Write{Value: []byte("v"), WrittenAt: 1})
	for _, m := range []*hintDeliver{
		{Keyspace: "default", Items: []hintItem{{Key: []byte("k"), Object: obj}}},
		{Keyspace: "default", Items: []hintItem{{Key: []byte("k")}}},
		{Keyspace: "", Items: nil},
	} {
		b, err := codec.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x83, 0x00, 0x60, 0x81, 0x82, 0x40, 0xf6})
	f.Fuzz(func(t *testing.T, data []byte) {
		var m hintDeliver
		if err := codec.Unmarshal(data, &m); err != nil {
			return
		}
		kos, err := hintBatchObjects(m.Keyspace, m.Items)
		if err != nil {
			return
		}
		if len(kos) != len(m.Items) || len(kos) > store.MaxMergeBatch {
			t.Fatalf("accepted %d objects of %d items", len(kos), len(m.Items))
		}
		for _, ko := range kos {
			if ko.Object == nil || ko.Object.Validate() != nil {
				t.Fatalf("accepted an invalid object %+v", ko.Object)
			}
			b, err := codec.Marshal(ko.Object)
			if err != nil {
				t.Fatalf("accepted object does not encode: %v", err)
			}
			back := version.New()
			if err := codec.Unmarshal(b, back); err != nil || !version.Equal(back, ko.Object) {
				t.Fatalf("accepted object does not round-trip: %v", err)
			}
		}
	})
}

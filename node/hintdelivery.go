package node

import (
	"errors"

	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/version"
	"github.com/meridian-kv/meridian/wan"
)

// Hint delivery, as a step machine (the model is repair.Differ): hints read
// from the store go in (Add, End), batches to send come out (Next), the
// target's answers go in (Acked, Failed), and what Acked returns is what
// may be deleted. It does no I/O, starts nothing and reads no clock; the
// handoff loop (handoff.go) carries its batches and deletes what it says.
//
// A batch holds the hints of one keyspace (the target merges it with one
// store.MergeMany: one synced batch), at most deliveryLimits.BatchHints of
// them and about BatchBytes of objects; up to InFlight batches are sent at
// once, so a target across a WAN receives a window of batches per round
// trip instead of one object. The first failure stops the round: nothing
// more is sent, the batches in flight are waited for, and the hints not
// acknowledged stay for the next round.

// deliveryLimits bound one delivery round to one target.
type deliveryLimits struct {
	// BatchHints bounds the hints of one batch; at most
	// store.MaxMergeBatch.
	BatchHints int
	// BatchBytes bounds the estimated encoded size of a batch's keys and
	// objects (hintSize); a single hint larger than it goes alone.
	BatchBytes int
	// InFlight bounds the batches sent and not yet answered.
	InFlight int
	// MaxHintBytes is the largest hint (hintSize) that one message can
	// carry; a larger one is set aside (TooLarge), not sent, so it cannot
	// stop the delivery of the hints after it.
	MaxHintBytes int
}

// Default delivery limits. A batch of 128 hints keeps every write's trace
// linked from its delivery span (OpenTelemetry's default span link limit
// is 128); 1 MiB keeps a batch a quarter of wan.DefaultMaxFrame; 4 batches
// in flight fill a 20–200 ms WAN round trip at a few thousand hints a
// second without holding more than 4 MiB of objects per target.
// A hint may take a whole frame but for 64 KiB of envelope; a node raises
// MaxHintBytes to its message limit (messages travel in fragments, see
// Node.deliveryLimits).
var defaultDeliveryLimits = deliveryLimits{BatchHints: 128, BatchBytes: 1 << 20, InFlight: 4, MaxHintBytes: wan.DefaultMaxFrame - 64<<10}

// hintBatch is one batch of a delivery round.
type hintBatch struct {
	seq      int // 0, 1, 2… in the order the batches were made
	keyspace string
	hints    []store.Hint
	bytes    int // sum of hintSize
}

// hintDelivery is one delivery round to one target. Not safe for
// concurrent use: one goroutine drives it.
type hintDelivery struct {
	lim      deliveryLimits
	filling  *hintBatch
	ready    []*hintBatch // complete, waiting for a free slot
	inFlight int
	made     int
	ended    bool
	err      error // the first failure; nothing more is sent after it
	acked    int   // hints in acknowledged batches
	tooLarge []tooLargeHint
}

// tooLargeHint names a hint no message can carry (its object is not kept).
type tooLargeHint struct {
	Keyspace string
	Key      []byte
	Bytes    int // hintSize
}

func newHintDelivery(lim deliveryLimits) *hintDelivery {
	if lim.BatchHints <= 0 || lim.BatchHints > store.MaxMergeBatch {
		lim.BatchHints = defaultDeliveryLimits.BatchHints
	}
	if lim.BatchBytes <= 0 {
		lim.BatchBytes = defaultDeliveryLimits.BatchBytes
	}
	if lim.InFlight <= 0 {
		lim.InFlight = defaultDeliveryLimits.InFlight
	}
	if lim.MaxHintBytes <= 0 {
		lim.MaxHintBytes = defaultDeliveryLimits.MaxHintBytes
	}
	return &hintDelivery{lim: lim}
}

// Add takes the next hint of the target, in the store's order.
func (d *hintDelivery) Add(h store.Hint) {
	if d.ended || d.err != nil {
		return
	}
	size := hintSize(h)
	if size > d.lim.MaxHintBytes {
		d.tooLarge = append(d.tooLarge, tooLargeHint{Keyspace: h.Keyspace, Key: h.Key, Bytes: size})
		return
	}
	if f := d.filling; f != nil && (f.keyspace != h.Keyspace || len(f.hints) >= d.lim.BatchHints || f.bytes+size > d.lim.BatchBytes) {
		d.seal()
	}
	if d.filling == nil {
		d.filling = &hintBatch{seq: d.made, keyspace: h.Keyspace}
		d.made++
	}
	d.filling.hints = append(d.filling.hints, h)
	d.filling.bytes += size
	if len(d.filling.hints) >= d.lim.BatchHints || d.filling.bytes >= d.lim.BatchBytes {
		d.seal()
	}
}

// seal moves the batch being filled to the ready queue.
func (d *hintDelivery) seal() {
	if d.filling != nil {
		d.ready = append(d.ready, d.filling)
		d.filling = nil
	}
}

// End says the store has no more hints for this round; err, if not nil,
// is why reading stopped early (the round then stops as after a failure).
func (d *hintDelivery) End(err error) {
	if err != nil {
		d.stop(err)
		return
	}
	d.ended = true
	d.seal()
}

// WantHints reports whether the driver should read more hints now: the
// round goes on and no complete batch is waiting for a slot. When it is
// false and the round goes on, the driver waits for an answer first
// (back-pressure: at most one batch is read ahead of the window).
func (d *hintDelivery) WantHints() bool { return d.err == nil && !d.ended && len(d.ready) == 0 }

// Next returns a batch to send now, if one is ready and the window has
// room; the driver must report its outcome with Acked or Failed.
func (d *hintDelivery) Next() (*hintBatch, bool) {
	if d.err != nil || len(d.ready) == 0 || d.inFlight >= d.lim.InFlight {
		return nil, false
	}
	b := d.ready[0]
	d.ready = d.ready[1:]
	d.inFlight++
	return b, true
}

// Acked records that the target durably merged b, and returns its hints:
// the driver deletes them (each only if unchanged since it was read).
func (d *hintDelivery) Acked(b *hintBatch) []store.Hint {
	d.inFlight--
	d.acked += len(b.hints)
	return b.hints
}

// Failed records that b was not acknowledged; the round stops.
func (d *hintDelivery) Failed(b *hintBatch, err error) {
	d.inFlight--
	d.stop(err)
}

// stop ends the round with err (the first error is kept): batches not yet
// sent are dropped, their hints stay in the store for the next round.
func (d *hintDelivery) stop(err error) {
	if err == nil {
		err = errors.New("node: hint delivery stopped")
	}
	if d.err == nil {
		d.err = err
	}
	d.ready, d.filling = nil, nil
}

// Stop ends the round early (the node is closing, or deleting delivered
// hints failed).
func (d *hintDelivery) Stop(err error) { d.stop(err) }

// Done reports whether the round is over: nothing in flight, and either it
// failed or every hint read was sent.
func (d *hintDelivery) Done() bool {
	if d.inFlight > 0 {
		return false
	}
	return d.err != nil || (d.ended && len(d.ready) == 0 && d.filling == nil)
}

// Err is the failure that stopped the round, or nil.
func (d *hintDelivery) Err() error { return d.err }

// TooLarge returns the hints of this round too large for one message:
// they stay in the store until they expire (and their ranges are marked
// for repair).
func (d *hintDelivery) TooLarge() []tooLargeHint { return d.tooLarge }

// Acknowledged is how many hints the target acknowledged in this round.
func (d *hintDelivery) Acknowledged() int { return d.acked }

// hintSize bounds the CBOR encoding of a hint's key and object in a
// hintBatch: every string, byte string, integer and array header is
// counted at its longest (9 bytes), so a batch's frame is never larger
// than its bytes plus a small envelope.
func hintSize(h store.Hint) int {
	const hdr = 9
	return 2*hdr + len(h.Key) + objectSize(h.Object)
}

// objectSize bounds the CBOR encoding of an object (see hintSize).
func objectSize(o *version.Object) int {
	const hdr = 9
	if o == nil {
		return hdr
	}
	n := 3 * hdr
	for actor := range o.Clock {
		n += 2*hdr + len(actor)
	}
	for _, s := range o.Siblings {
		n += 8*hdr + len(s.Dot.Actor) + len(s.Value) + len(s.Trace)
	}
	return n
}

package wan

import (
	"math"

	"github.com/meridian-kv/meridian/codec"
)

// The envelope is on every message, so its encoding is written by hand:
// appendEnvelope gives exactly the bytes codec.Marshal gives (core
// deterministic CBOR: a 6-element array, shortest-form integers), without
// reflection and without copying the payload through a buffer of its
// own; parseEnvelope reads the common shape of that array, and leaves the
// payload in the frame's buffer instead of copying it. Whatever it does
// not recognise goes to codec.Unmarshal, so the two read the same
// envelopes and refuse the same malformed ones
// (TestEnvelopeCodecMatchesReflection, FuzzReadFrame).

// The heads of the envelope's arrays.
const (
	envelopeHead = 0x80 | 6 // array of 6
	traceHead    = 0x80 | 2 // array of 2
)

// envelopeSize bounds the length of e's encoding.
func envelopeSize(e *Envelope) int {
	const heads = 1 + 4*9 + 1 + 2*9 + 1 // array, integers, trace array, strings, null
	return heads + len(e.Trace.Traceparent) + len(e.Trace.Tracestate) + len(e.Payload)
}

// appendEnvelope appends the CBOR encoding of e (version Version when
// e.V is 0) to dst.
func appendEnvelope(dst []byte, e *Envelope) []byte {
	v := e.V
	if v == 0 {
		v = Version
	}
	dst = append(dst, envelopeHead)
	dst = codec.AppendHead(dst, codec.MajorUint, uint64(v))
	dst = codec.AppendHead(dst, codec.MajorUint, uint64(e.Type))
	dst = codec.AppendHead(dst, codec.MajorUint, e.ID)
	if e.Deadline >= 0 {
		dst = codec.AppendHead(dst, codec.MajorUint, uint64(e.Deadline))
	} else {
		dst = codec.AppendHead(dst, codec.MajorNegInt, uint64(-1-e.Deadline))
	}
	dst = append(dst, traceHead)
	dst = codec.AppendText(dst, e.Trace.Traceparent)
	dst = codec.AppendText(dst, e.Trace.Tracestate)
	if len(e.Payload) == 0 {
		return append(dst, codec.Null)
	}
	return append(dst, e.Payload...)
}

// parseEnvelope decodes body when it has the shape appendEnvelope writes
// (any integer width accepted) and its payload is one well-formed item;
// ok is false otherwise, and codec.Unmarshal decides.
// The payload aliases body.
func parseEnvelope(body []byte) (e *Envelope, ok bool) {
	if len(body) == 0 || body[0] != envelopeHead {
		return nil, false
	}
	b := body[1:]
	var v, t, id, d uint64
	if v, b, ok = codec.ReadHead(b, codec.MajorUint); !ok || v > math.MaxUint8 {
		return nil, false
	}
	if t, b, ok = codec.ReadHead(b, codec.MajorUint); !ok || t > math.MaxUint16 {
		return nil, false
	}
	if id, b, ok = codec.ReadHead(b, codec.MajorUint); !ok {
		return nil, false
	}
	var deadline int64
	if len(b) > 0 && b[0]>>5 == codec.MajorNegInt {
		if d, b, ok = codec.ReadHead(b, codec.MajorNegInt); !ok || d > math.MaxInt64 {
			return nil, false
		}
		deadline = -1 - int64(d)
	} else {
		if d, b, ok = codec.ReadHead(b, codec.MajorUint); !ok || d > math.MaxInt64 {
			return nil, false
		}
		deadline = int64(d)
	}
	if len(b) == 0 || b[0] != traceHead {
		return nil, false
	}
	e = &Envelope{V: uint8(v), Type: MsgType(t), ID: id, Deadline: deadline}
	if e.Trace.Traceparent, b, ok = codec.ReadText(b[1:]); !ok {
		return nil, false
	}
	if e.Trace.Tracestate, b, ok = codec.ReadText(b); !ok {
		return nil, false
	}
	// A null payload (the transport's control envelopes: one follows
	// every reply stream's last reply) decodes, as with the codec, to the
	// null item itself.
	if len(b) == 0 || (len(b) != 1 || b[0] != codec.Null) && codec.Wellformed(b) != nil {
		return nil, false
	}
	e.Payload = b[:len(b):len(b)]
	return e, true
}

// decodeEnvelope decodes an envelope's CBOR encoding.
func decodeEnvelope(body []byte) (*Envelope, error) {
	if e, ok := parseEnvelope(body); ok {
		return e, nil
	}
	e := new(Envelope)
	if err := codec.Unmarshal(body, e); err != nil {
		return nil, err
	}
	return e, nil
}

package wan

import (
	"encoding/binary"
	"math"
	"unicode/utf8"

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

// CBOR major types and the heads the envelope uses.
const (
	majorUint     = 0
	majorNegInt   = 1
	majorText     = 3
	envelopeHead  = 0x80 | 6 // array of 6
	traceHead     = 0x80 | 2 // array of 2
	cborNull      = 0xf6
	minorOneByte  = 24
	minorTwoByte  = 25
	minorFourByte = 26
	minorEightByt = 27
)

// appendHead appends a CBOR head of major type major and argument n in
// its shortest form.
func appendHead(dst []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < minorOneByte:
		return append(dst, m|byte(n))
	case n <= math.MaxUint8:
		return append(dst, m|minorOneByte, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, m|minorTwoByte), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, m|minorFourByte), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, m|minorEightByt), n)
	}
}

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
	dst = appendHead(dst, majorUint, uint64(v))
	dst = appendHead(dst, majorUint, uint64(e.Type))
	dst = appendHead(dst, majorUint, e.ID)
	if e.Deadline >= 0 {
		dst = appendHead(dst, majorUint, uint64(e.Deadline))
	} else {
		dst = appendHead(dst, majorNegInt, uint64(-1-e.Deadline))
	}
	dst = append(dst, traceHead)
	dst = append(appendHead(dst, majorText, uint64(len(e.Trace.Traceparent))), e.Trace.Traceparent...)
	dst = append(appendHead(dst, majorText, uint64(len(e.Trace.Tracestate))), e.Trace.Tracestate...)
	if len(e.Payload) == 0 {
		return append(dst, cborNull)
	}
	return append(dst, e.Payload...)
}

// readHead reads a CBOR head of major type major with a definite argument
// from the start of b, returning the argument and the rest of b.
func readHead(b []byte, major byte) (n uint64, rest []byte, ok bool) {
	if len(b) == 0 || b[0]>>5 != major {
		return 0, nil, false
	}
	minor := b[0] & 0x1f
	b = b[1:]
	switch {
	case minor < minorOneByte:
		return uint64(minor), b, true
	case minor == minorOneByte && len(b) >= 1:
		return uint64(b[0]), b[1:], true
	case minor == minorTwoByte && len(b) >= 2:
		return uint64(binary.BigEndian.Uint16(b)), b[2:], true
	case minor == minorFourByte && len(b) >= 4:
		return uint64(binary.BigEndian.Uint32(b)), b[4:], true
	case minor == minorEightByt && len(b) >= 8:
		return binary.BigEndian.Uint64(b), b[8:], true
	}
	return 0, nil, false
}

// readText reads a definite-length, valid UTF-8 text string.
func readText(b []byte) (s string, rest []byte, ok bool) {
	n, b, ok := readHead(b, majorText)
	if !ok || n > uint64(len(b)) || !utf8.Valid(b[:n]) {
		return "", nil, false
	}
	return string(b[:n]), b[n:], true
}

// parseEnvelope decodes body when it has the shape appendEnvelope writes
// (any integer width accepted) and its payload is one well-formed item
// other than null; ok is false otherwise, and codec.Unmarshal decides.
// The payload aliases body.
func parseEnvelope(body []byte) (e *Envelope, ok bool) {
	if len(body) == 0 || body[0] != envelopeHead {
		return nil, false
	}
	b := body[1:]
	var v, t, id, d uint64
	if v, b, ok = readHead(b, majorUint); !ok || v > math.MaxUint8 {
		return nil, false
	}
	if t, b, ok = readHead(b, majorUint); !ok || t > math.MaxUint16 {
		return nil, false
	}
	if id, b, ok = readHead(b, majorUint); !ok {
		return nil, false
	}
	var deadline int64
	if len(b) > 0 && b[0]>>5 == majorNegInt {
		if d, b, ok = readHead(b, majorNegInt); !ok || d > math.MaxInt64 {
			return nil, false
		}
		deadline = -1 - int64(d)
	} else {
		if d, b, ok = readHead(b, majorUint); !ok || d > math.MaxInt64 {
			return nil, false
		}
		deadline = int64(d)
	}
	if len(b) == 0 || b[0] != traceHead {
		return nil, false
	}
	e = &Envelope{V: uint8(v), Type: MsgType(t), ID: id, Deadline: deadline}
	if e.Trace.Traceparent, b, ok = readText(b[1:]); !ok {
		return nil, false
	}
	if e.Trace.Tracestate, b, ok = readText(b); !ok {
		return nil, false
	}
	if len(b) == 0 || b[0] == cborNull || codec.Wellformed(b) != nil {
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

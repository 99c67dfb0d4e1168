package wan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// DefaultMaxFrame is the default limit on one frame's CBOR body, in bytes.
const DefaultMaxFrame = 4 << 20

// frameHeaderLen is the size of the big-endian length prefix.
const frameHeaderLen = 4

// WriteFrame writes e as one frame: a 4-byte big-endian body length, then
// the envelope's CBOR encoding, in a single Write. An envelope with V == 0 is
// written as version 1.
func WriteFrame(w io.Writer, e *Envelope) error {
	b, err := appendFrame(nil, e, math.MaxUint32)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// appendFrame appends e's frame to dst, refusing bodies over maxFrame bytes.
func appendFrame(dst []byte, e *Envelope, maxFrame int) ([]byte, error) {
	if e == nil {
		return dst, errNilEnvelope
	}
	out, body := appendFramed(dst, e)
	if body > maxFrame {
		return dst, fmt.Errorf("%w: %d-byte envelope of message type %d exceeds the %d-byte limit", ErrFrameTooLarge, body, e.Type, maxFrame)
	}
	return out, nil
}

// appendFramed appends e's frame to dst, encoding the envelope in place
// after its length prefix, and returns it with the envelope's length.
func appendFramed(dst []byte, e *Envelope) (out []byte, body int) {
	at := len(dst)
	out = slices.Grow(dst, frameHeaderLen+envelopeSize(e))
	out = appendEnvelope(append(out, 0, 0, 0, 0), e)
	body = len(out) - at - frameHeaderLen
	binary.BigEndian.PutUint32(out[at:], uint32(body))
	return out, body
}

var errNilEnvelope = errors.New("wan: nil envelope")

// encodeEnvelope encodes e, stamping the current Version if e has none.
func encodeEnvelope(e *Envelope) ([]byte, error) {
	if e == nil {
		return nil, errNilEnvelope
	}
	return appendEnvelope(make([]byte, 0, envelopeSize(e)), e), nil
}

// firstChunk is the buffer a frame body is first read into when it is
// declared larger; see readBody.
const firstChunk = 4 << 10

// readBody reads a frame body of n bytes from r without trusting n: the
// buffer starts at min(n, firstChunk) bytes and doubles, capped at n, only
// once it is full, so it is never more than twice the bytes that arrived
// (or firstChunk). A peer that declares 4 MiB and sends nothing more costs
// 4 KiB, not 4 MiB. On error it returns the bytes read so far.
func readBody(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, min(n, firstChunk))
	got := 0
	for {
		m, err := io.ReadFull(r, buf[got:])
		got += m
		if err != nil {
			return buf[:got], err
		}
		if got == n {
			return buf, nil
		}
		grown := make([]byte, min(n, 2*len(buf)))
		copy(grown, buf)
		buf = grown
	}
}

// ReadFrame reads one frame from r. It checks the declared length against
// maxFrame (DefaultMaxFrame if maxFrame <= 0) before reading anything more,
// reads the body into a buffer that grows only as bytes arrive (see
// readBody: at most twice what arrived, never the declared length up
// front), and decodes with the bounded decoder.
//
// It returns io.EOF if r ends cleanly before a frame starts, an error
// wrapping ErrFrameTooLarge for an oversized frame, and an error wrapping
// ErrMalformed for a truncated body, invalid CBOR or an unsupported
// envelope version. Errors from r are returned as they are (a truncated
// header is io.ErrUnexpectedEOF). It never panics on any input.
func ReadFrame(r io.Reader, maxFrame int) (*Envelope, error) {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(maxFrame) {
		return nil, fmt.Errorf("%w: declared length %d exceeds the %d-byte limit", ErrFrameTooLarge, n, maxFrame)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	body, err := readBody(r, int(n))
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: frame truncated after %d of %d bytes: %w", ErrMalformed, len(body), n, io.ErrUnexpectedEOF)
		}
		return nil, err
	}
	e, err := decodeEnvelope(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if e.V != Version {
		return nil, fmt.Errorf("%w: envelope version %d, this node speaks version %d", ErrMalformed, e.V, Version)
	}
	return e, nil
}

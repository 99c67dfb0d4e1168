package wan

import (
	"errors"
	"fmt"
	"io"

	"github.com/meridian-kv/meridian/codec"
)

// DefaultMaxMessage is the default limit on one message (an envelope that
// may span several frames), in bytes.
const DefaultMaxMessage = 256 << 20

// TypeFragment is a frame that carries one piece of a message too large for
// a single frame. Its payload is a fragment.
const TypeFragment MsgType = 2

// fragmentOverhead bounds the bytes a fragment envelope adds around its
// piece of the message: the envelope array, V, Type, ID, an empty
// deadline and trace, and the fragment array, Total and the byte-string
// header.
const fragmentOverhead = 64

// fragment is the payload of a TypeFragment frame. Total is the length of
// the whole message's CBOR encoding (the same in every piece); Data the
// next bytes of it. A message ends when the pieces add up to Total.
type fragment struct {
	_     struct{} `cbor:",toarray"`
	Total uint64
	Data  []byte
}

// appendMessage appends e to dst as one frame, or, when its encoding is
// larger than maxFrame but at most maxMessage bytes, as a run of
// TypeFragment frames of at most maxFrame bytes each. An envelope larger
// than maxMessage is refused with an error wrapping ErrFrameTooLarge;
// nothing is appended then.
func appendMessage(dst []byte, e *Envelope, maxFrame, maxMessage int) ([]byte, error) {
	if e == nil {
		return dst, errNilEnvelope
	}
	if out, n := appendFramed(dst, e); n <= maxFrame {
		return out, nil
	}
	body := appendEnvelope(nil, e)
	if len(body) > maxMessage {
		return dst, fmt.Errorf("%w: %d-byte message of type %d exceeds the %d-byte message limit (it was not sent)", ErrFrameTooLarge, len(body), e.Type, maxMessage)
	}
	piece := maxFrame - fragmentOverhead
	if piece <= 0 {
		return dst, fmt.Errorf("%w: %d-byte message of type %d exceeds the %d-byte frame limit, too small to carry fragments", ErrFrameTooLarge, len(body), e.Type, maxFrame)
	}
	out := dst
	for off := 0; off < len(body); off += piece {
		end := min(off+piece, len(body))
		f, err := codec.Marshal(&fragment{Total: uint64(len(body)), Data: body[off:end]})
		if err != nil {
			return dst, fmt.Errorf("wan: encode fragment of message type %d: %w", e.Type, err)
		}
		if out, err = appendFrame(out, &Envelope{V: Version, Type: TypeFragment, ID: e.ID, Payload: f}, maxFrame); err != nil {
			return dst, err
		}
	}
	return out, nil
}

// ReadMessage reads one message from r: a single frame, or the run of
// TypeFragment frames of a message larger than one frame, reassembled and
// decoded. Every frame is checked against maxFrame as ReadFrame does; the
// declared length of a fragmented message against maxMessage (default
// DefaultMaxMessage), and its buffer, like each frame's, grows only as its
// pieces arrive (doubling, capped at the declared total), so a peer cannot
// make the reader hold more than about twice what it actually sent.
//
// Errors are those of ReadFrame; a run of fragments that is interrupted,
// inconsistent or longer than it declared wraps ErrMalformed.
func ReadMessage(r io.Reader, maxFrame, maxMessage int) (*Envelope, error) {
	if maxMessage <= 0 {
		maxMessage = DefaultMaxMessage
	}
	e, err := ReadFrame(r, maxFrame)
	if err != nil || e.Type != TypeFragment {
		return e, err
	}
	id := e.ID
	var total uint64
	var buf []byte
	for {
		var f fragment
		if err := e.Decode(&f); err != nil {
			return nil, err
		}
		switch {
		case len(f.Data) == 0:
			return nil, fmt.Errorf("%w: empty message fragment", ErrMalformed)
		case total == 0 && f.Total > uint64(maxMessage):
			return nil, fmt.Errorf("%w: declared message length %d exceeds the %d-byte message limit", ErrFrameTooLarge, f.Total, maxMessage)
		case total == 0:
			total = f.Total
			buf = make([]byte, 0, min(total, uint64(2*len(f.Data))))
		case f.Total != total || e.ID != id:
			return nil, fmt.Errorf("%w: message fragment of request %d declares %d bytes, its run began with request %d of %d bytes", ErrMalformed, e.ID, f.Total, id, total)
		}
		if uint64(len(buf))+uint64(len(f.Data)) > total {
			return nil, fmt.Errorf("%w: message fragments exceed their declared %d bytes", ErrMalformed, total)
		}
		if need := len(buf) + len(f.Data); need > cap(buf) {
			// Double, but never past the declared total: the buffer stays
			// within twice what arrived.
			grown := make([]byte, len(buf), int(min(total, uint64(max(need, 2*cap(buf))))))
			copy(grown, buf)
			buf = grown
		}
		buf = append(buf, f.Data...)
		if uint64(len(buf)) == total {
			break
		}
		e, err = ReadFrame(r, maxFrame)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: message truncated after %d of %d bytes: %w", ErrMalformed, len(buf), total, io.ErrUnexpectedEOF)
			}
			return nil, err
		}
		if e.Type != TypeFragment {
			return nil, fmt.Errorf("%w: message type %d inside a fragmented message", ErrMalformed, e.Type)
		}
	}
	out, err := decodeEnvelope(buf)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if out.V != Version {
		return nil, fmt.Errorf("%w: envelope version %d, this node speaks version %d", ErrMalformed, out.V, Version)
	}
	if out.Type == TypeFragment {
		return nil, fmt.Errorf("%w: a fragmented message may not hold a fragment", ErrMalformed)
	}
	return out, nil
}

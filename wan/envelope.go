package wan

import (
	"fmt"

	"github.com/meridian-kv/meridian/codec"
)

// ALPN protocol identifiers. Every connection negotiates exactly one.
const (
	// ALPNNode is node-to-node traffic; both ends must hold node certificates.
	ALPNNode = "meridian-node/1"
	// ALPNClient is client-to-node traffic; the client may hold a client or
	// a node certificate.
	ALPNClient = "meridian-client/1"
)

// Version is the envelope format version this package writes and accepts.
const Version uint8 = 1

// MsgType identifies the payload of an envelope. Types below 16 belong to
// this package; callers define theirs from 16 up.
type MsgType uint16

// TypeError is a reply carrying an ErrorPayload. Calls turn it into a
// *RemoteError.
const TypeError MsgType = 1

// TypePing asks the transport itself (not the handler) for a TypePing reply:
// a Dialer sends it on a connection that has been quiet, to learn whether
// the peer is still there before it sends a request on it. (It was 2, the
// number of TypeFragment, so a ping was read as a broken fragment and
// answered with an error; a peer of that time still answers 2 that way,
// and hands 3 to its handler, which answers with an error: either is a
// sign of life.)
const TypePing MsgType = 3

// TraceContext is a W3C trace context (https://www.w3.org/TR/trace-context/)
// carried in every envelope so traces cross node boundaries.
type TraceContext struct {
	_           struct{} `cbor:",toarray"`
	Traceparent string
	Tracestate  string
}

// Envelope is one message on a stream: a request, or one of its replies.
// It is encoded as a CBOR array in field order.
type Envelope struct {
	_ struct{} `cbor:",toarray"`
	// V is the envelope format version, 1. Zero is written as 1.
	V uint8
	// Type says what Payload holds.
	Type MsgType
	// ID is the request id; replies carry their request's id.
	ID uint64
	// Deadline is the caller's deadline in Unix nanoseconds; 0 means none.
	// The handler's context carries it.
	Deadline int64
	// Trace propagates the caller's span.
	Trace TraceContext
	// Payload is the CBOR-encoded message body; see Decode.
	Payload codec.RawMessage
}

// ErrorPayload is the payload of a TypeError envelope.
type ErrorPayload struct {
	_       struct{} `cbor:",toarray"`
	Code    string
	Message string
}

// NewEnvelope returns a version-1 envelope of type t whose payload is the
// deterministic CBOR encoding of payload.
func NewEnvelope(t MsgType, payload any) (*Envelope, error) {
	b, err := codec.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("wan: encode %T payload of message type %d: %w", payload, t, err)
	}
	return &Envelope{V: Version, Type: t, Payload: b}, nil
}

// Decode decodes the payload into v with the bounded decoder. Errors wrap
// ErrMalformed.
func (e *Envelope) Decode(v any) error {
	if len(e.Payload) == 0 {
		return fmt.Errorf("%w: message type %d has no payload", ErrMalformed, e.Type)
	}
	if err := codec.Unmarshal(e.Payload, v); err != nil {
		return fmt.Errorf("%w: message type %d into %T: %w", ErrMalformed, e.Type, v, err)
	}
	return nil
}

// errorEnvelope builds a TypeError reply.
func errorEnvelope(code, msg string) *Envelope {
	e, err := NewEnvelope(TypeError, &ErrorPayload{Code: code, Message: msg})
	if err != nil {
		// Two strings always encode; a failure here is a bug in codec.
		panic(err)
	}
	return e
}

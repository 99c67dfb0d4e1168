package wan

import (
	"context"
	"errors"
	"fmt"
)

// Sentinel errors. Test for them with errors.Is.
var (
	// ErrFrameTooLarge reports a frame whose declared length exceeds the
	// reader's limit (or, when sending, the sender's limit). The body is
	// neither read nor allocated.
	ErrFrameTooLarge = errors.New("wan: frame too large")
	// ErrMalformed reports a frame or payload that is not a valid envelope:
	// bad CBOR, a value past the decode limits, a truncated body or an
	// unsupported envelope version.
	ErrMalformed = errors.New("wan: malformed message")
	// ErrUnreachable reports a call whose request was NOT sent: no
	// connection to the peer could be made (the dial failed, or failed
	// recently and is in back-off), or the connection was lost before the
	// stream had accepted the whole request frame. The peer cannot have
	// acted on it, so the caller may send it to another peer.
	ErrUnreachable = errors.New("wan: peer unreachable")
	// ErrOutcomeUnknown reports a call whose request was sent — the stream
	// accepted every byte of its frame — but that ended without the peer's
	// answer: the connection was lost, the stream was reset, a reply could
	// not be read, or the caller's context ended. The peer may have acted
	// on the request. A caller must not repeat a non-idempotent request
	// elsewhere after it; it wraps the cause (e.g. context.DeadlineExceeded
	// or ErrMalformed), so errors.Is finds both.
	ErrOutcomeUnknown = errors.New("wan: request sent but not answered (outcome unknown)")
	// ErrWrongPeer reports that the certificate presented at an address
	// names a different node than the caller expected.
	ErrWrongPeer = errors.New("wan: unexpected peer at address")
	// ErrForbidden reports that the peer refused our certificate: it is not
	// signed by the peer's cluster CA, has expired, or its role may not use
	// the protocol we asked for (a client certificate on the node ALPN).
	ErrForbidden = errors.New("wan: peer refused our certificate")
	// ErrClosed reports use of a closed Transport, Dialer or Replier.
	ErrClosed = errors.New("wan: closed")
)

// Error codes carried in ErrorPayload.Code by the transport itself. Callers
// may define their own codes.
const (
	// CodeBadRequest: the request frame could not be read or decoded.
	CodeBadRequest = "bad_request"
	// CodeInternal: the handler panicked.
	CodeInternal = "internal"
	// CodeDeadlineExceeded: the request's deadline passed before the
	// handler answered (or had passed on arrival, so it was not called).
	// Such a RemoteError unwraps to context.DeadlineExceeded.
	CodeDeadlineExceeded = "deadline_exceeded"
	// CodeOverloaded: the request was not served, because the requests
	// being read on its connection already held the connection's budget
	// (Config.MaxRequestBytesPerConn), or because its principal was over
	// its request rate (Config.ClientRequestsPerSecond). It was not
	// executed: the caller may retry it later, or send it elsewhere.
	CodeOverloaded = "overloaded"
	// CodeNotExecuted: the handler refused the request without executing
	// any of it (a node whose store failed refuses reads and writes): the
	// caller may send it to another node at once.
	CodeNotExecuted = "not_executed"
)

// RemoteError is returned by a call whose reply was a TypeError envelope.
// It works with errors.As.
type RemoteError struct {
	Code    string
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("wan: remote error %s: %s", e.Code, e.Message)
}

// Unwrap makes a remote deadline errors.Is(err, context.DeadlineExceeded).
func (e *RemoteError) Unwrap() error {
	if e.Code == CodeDeadlineExceeded {
		return context.DeadlineExceeded
	}
	return nil
}

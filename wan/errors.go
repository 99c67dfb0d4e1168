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
	// ErrUnreachable reports that no connection to the peer could be made
	// (the dial failed, or failed recently and is in back-off) or that the
	// connection was lost during a call. When it is lost after the request
	// was sent, the outcome of the request is unknown.
	ErrUnreachable = errors.New("wan: peer unreachable")
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

package repair

import (
	"errors"
	"fmt"
)

var (
	// ErrBadRange is returned for a token range that wraps around the ring
	// or is empty. Split a wrapping range into [from, 0) and [0, to).
	ErrBadRange = errors.New("repair: bad token range")

	// ErrBadDepth is returned for a tree depth outside [0, MaxDepth].
	ErrBadDepth = errors.New("repair: tree depth out of range")

	// ErrMismatch is returned when two trees that are compared do not cover
	// the same keyspace, range and depth: both replicas of a repair session
	// must build their trees with the same parameters.
	ErrMismatch = errors.New("repair: trees of different shape")

	// ErrPeerProtocol is returned when a peer answers a tree-level request
	// with the wrong number of hashes or hashes of the wrong size, and by
	// Tree.Level for a request no honest initiator makes.
	ErrPeerProtocol = errors.New("repair: tree exchange protocol violation")

	// ErrBadProgress is returned by DecodeProgress and DecodeDirtySet for
	// bytes that are not a checkpoint this package wrote.
	ErrBadProgress = errors.New("repair: malformed checkpoint")
)

// WindowError reports what is wrong with one configured repair window.
// ValidateWindows joins one per problem; use errors.As to get at them.
type WindowError struct {
	Index int       // position in the configured list
	Pair  [2]string // the window's datacenter pair, as configured
	Err   error
}

func (e *WindowError) Error() string {
	return fmt.Sprintf("repair: window %d (%s): %v", e.Index, pairString(e.Pair), e.Err)
}

func (e *WindowError) Unwrap() error { return e.Err }

package store

import (
	"errors"
	"fmt"
)

// MaxKeyLen is the longest key the store accepts, in bytes (64 KiB).
const MaxKeyLen = 64 << 10

var (
	// ErrKeyTooLarge is returned for a key longer than MaxKeyLen.
	ErrKeyTooLarge = fmt.Errorf("store: key longer than %d bytes (the limit is 64 KiB; use a shorter key, for example a hash of it)", MaxKeyLen)

	// ErrEmptyKeyspace is returned when the keyspace name is empty.
	ErrEmptyKeyspace = errors.New("store: empty keyspace name (every key belongs to a named keyspace)")

	// ErrCorrupt is returned when a stored record cannot be decoded. The
	// record is left in place; repair from another replica can replace it.
	ErrCorrupt = errors.New("store: corrupt record")

	// ErrFailed is returned once the storage engine has hit an unrecoverable
	// error, typically a failed fsync of the write-ahead log. The write that
	// met it was not acknowledged, and the Store refuses every later call:
	// check the disk and restart the node.
	ErrFailed = errors.New("store: storage engine failed, no further reads or writes are served (check the disk and restart the node)")

	// ErrClosed is returned by calls on a closed Store.
	ErrClosed = errors.New("store: closed")

	// ErrWrappedRange is returned by Scan when from > to (and to != 0):
	// a range that wraps around the ring must be split by the caller.
	ErrWrappedRange = errors.New("store: scan range wraps around the ring (split it into [from, 0) and [0, to))")
)

// validate checks a keyspace name and a key.
func validate(ks string, key []byte) error {
	if ks == "" {
		return ErrEmptyKeyspace
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: got %d bytes", ErrKeyTooLarge, len(key))
	}
	return nil
}

// printableKey renders a key for an error message, truncated so that a
// 64 KiB key does not produce a 128 KiB error string.
func printableKey(key []byte) string {
	const limit = 32
	if len(key) > limit {
		return fmt.Sprintf("%q… (%d bytes)", key[:limit], len(key))
	}
	return fmt.Sprintf("%q", key)
}

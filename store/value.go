package store

import (
	"errors"
	"fmt"

	"github.com/meridian-kv/meridian/version"
)

// objectFormatV1 is the leading byte of a stored object: CBOR of
// version.Object follows. A new layout gets a new byte; decoders keep
// reading the old ones.
const objectFormatV1 byte = 1

// encodeObject returns the stored form of obj (the format byte, then the
// codec's encoding, written by version.AppendObject).
func encodeObject(obj *version.Object) ([]byte, error) {
	return version.AppendObject([]byte{objectFormatV1}, obj), nil
}

// decodeObject parses a value made by encodeObject. The result does not
// alias v. Callers wrap its errors with corrupt.
func decodeObject(v []byte) (*version.Object, error) {
	if len(v) == 0 {
		return nil, errors.New("empty value")
	}
	if v[0] != objectFormatV1 {
		return nil, fmt.Errorf("unknown object format %d (written by a newer Meridian, or damaged)", v[0])
	}
	return version.DecodeObject(v[1:])
}

// corrupt wraps the cause of an undecodable record of key in keyspace ks.
func corrupt(ks string, key []byte, cause error) error {
	return fmt.Errorf("%w: keyspace %q key %s: %w", ErrCorrupt, ks, printableKey(key), cause)
}

package codec

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Decode limits. They bound the work a hostile peer can make a node do per
// message; legitimate messages stay far below them.
const (
	MaxNesting       = 16
	MaxArrayElements = 1 << 16
	MaxMapPairs      = 1 << 12
)

var (
	enc cbor.EncMode
	dec cbor.DecMode
)

func init() {
	var err error
	enc, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	dec, err = cbor.DecOptions{
		MaxNestedLevels:   MaxNesting,
		MaxArrayElements:  MaxArrayElements,
		MaxMapPairs:       MaxMapPairs,
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
		// Meridian's messages use no CBOR tags. The library checks the
		// content of built-in tags only at the top level, so a tag nested
		// in a RawMessage could decode and then fail to re-encode.
		TagsMd: cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Marshal encodes v deterministically.
func Marshal(v any) ([]byte, error) { return enc.Marshal(v) }

// Unmarshal decodes exactly one CBOR item from data into v, refusing
// trailing bytes and anything past the decode limits.
func Unmarshal(data []byte, v any) error {
	if err := dec.Unmarshal(data, v); err != nil {
		return fmt.Errorf("codec: malformed cbor: %w", err)
	}
	return nil
}

// RawMessage is an encoded CBOR item, decoded later.
type RawMessage = cbor.RawMessage

// Wellformed reports whether data is exactly one well-formed CBOR data
// item within the decoder's limits (nesting, array and map sizes,
// definite lengths, no tags, valid UTF-8). It decodes nothing, so it
// does not see what only decoding into a type finds (duplicate map keys,
// unknown fields).
func Wellformed(data []byte) error {
	if err := dec.Wellformed(data); err != nil {
		return fmt.Errorf("codec: malformed cbor: %w", err)
	}
	return nil
}

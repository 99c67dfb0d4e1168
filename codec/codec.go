package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"

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

// Appender is a message with a hand-written encoder: AppendCBOR appends to
// dst the bytes the reflecting encoder would write for it. Marshal calls
// it instead of reflecting.
type Appender interface {
	AppendCBOR(dst []byte) []byte
}

// Parser is a message with a hand-written decoder: ParseCBOR decodes all
// of data as Unmarshal would, handing what it does not expect to
// Unmarshal on a type without the method. Unmarshal calls it instead of
// reflecting.
type Parser interface {
	ParseCBOR(data []byte) error
}

// Marshal encodes v deterministically.
func Marshal(v any) ([]byte, error) {
	if a, ok := v.(Appender); ok {
		return a.AppendCBOR(nil), nil
	}
	return enc.Marshal(v)
}

// Unmarshal decodes exactly one CBOR item from data into v, refusing
// trailing bytes and anything past the decode limits.
func Unmarshal(data []byte, v any) error {
	if p, ok := v.(Parser); ok {
		return p.ParseCBOR(data)
	}
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

// CBOR major types, for the encodings written by hand (the envelope,
// version.Object), which must match Marshal's bytes.
const (
	MajorUint   byte = 0
	MajorNegInt byte = 1
	MajorBytes  byte = 2
	MajorText   byte = 3
	MajorArray  byte = 4
	MajorMap    byte = 5
	// Null is the CBOR null.
	Null byte = 0xf6
)

// AppendHead appends a CBOR head of major type major and argument n in
// its shortest form, as Marshal writes it.
func AppendHead(dst []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(dst, m|byte(n))
	case n <= math.MaxUint8:
		return append(dst, m|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, m|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, m|26), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, m|27), n)
	}
}

// ReadHead reads a CBOR head of major type major with a definite argument
// (of any width) from the start of b, returning the argument and the rest
// of b; ok is false for anything else.
func ReadHead(b []byte, major byte) (n uint64, rest []byte, ok bool) {
	if len(b) == 0 || b[0]>>5 != major {
		return 0, nil, false
	}
	minor := b[0] & 0x1f
	b = b[1:]
	switch {
	case minor < 24:
		return uint64(minor), b, true
	case minor == 24 && len(b) >= 1:
		return uint64(b[0]), b[1:], true
	case minor == 25 && len(b) >= 2:
		return uint64(binary.BigEndian.Uint16(b)), b[2:], true
	case minor == 26 && len(b) >= 4:
		return uint64(binary.BigEndian.Uint32(b)), b[4:], true
	case minor == 27 && len(b) >= 8:
		return binary.BigEndian.Uint64(b), b[8:], true
	}
	return 0, nil, false
}

// AppendText appends s as a CBOR text string, as Marshal writes it.
func AppendText(dst []byte, s string) []byte {
	return append(AppendHead(dst, MajorText, uint64(len(s))), s...)
}

// ReadText reads a definite-length, valid UTF-8 text string from the start
// of b, returning it and the rest of b; ok is false for anything else.
func ReadText(b []byte) (s string, rest []byte, ok bool) {
	n, b, ok := ReadHead(b, MajorText)
	if !ok || n > uint64(len(b)) || !utf8.Valid(b[:n]) {
		return "", nil, false
	}
	return string(b[:n]), b[n:], true
}

// Package codec is Meridian's one CBOR encoding: a deterministic encode mode
// (RFC 8949 core deterministic encoding, so equal values give equal bytes on
// every node) and one bounded decode mode. Everything that crosses the wire,
// is stored on disk or is hashed goes through it.
//
// Decoding is strict: nesting depth, array and map sizes are bounded,
// duplicate map keys and unknown fields of keyed structs are rejected, and
// indefinite-length items are refused. CBOR itself puts no bound on byte
// strings, so callers must cap the input length before decoding (wan frames
// do).
package codec

// Package api defines the client protocol of Meridian: the message types a
// client sends a node over the client ALPN, and their payloads. Payloads are
// CBOR arrays (codec) of a fixed length whose first field is a payload
// version, written 0 and ignored. The decoder refuses an array of another
// length, so a field cannot be appended to a message compatibly: a message
// that needs one becomes a new message type. docs/protocol.md and
// docs/protocol.cddl are the contract, pinned by the golden vectors in
// testdata/golden. Both the client library and the node import it; it
// holds no logic beyond validation of limits.
package api

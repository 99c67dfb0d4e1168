// Package api defines the client protocol of Meridian: the message types a
// client sends a node over the client ALPN, and their payloads. Payloads are
// CBOR arrays (codec) whose first field is a format version, so fields can be
// appended compatibly. Both the client library and the node import it; it
// holds no logic beyond validation of limits.
package api

// Package wan is Meridian's network layer: QUIC with mutual TLS, a CBOR
// envelope in length-prefixed frames, a per-peer connection pool, the PKI
// helpers that make a cluster's certificates, and a WAN emulator.
//
// # Connections and identities
//
// Every node listens on one UDP socket (Listen) and dials its peers from
// the same socket, one pooled QUIC connection per peer address (dialled on
// demand, re-dialled when it has died, concurrent callers sharing one dial;
// after a failed dial, calls fail fast with ErrUnreachable for a back-off of
// 50ms doubling to 1s). Clients dial through a Dialer. A node's QUIC
// stateless-reset key is derived from its private key, so after a restart
// it resets its peers' stale connections and they re-dial at once.
//
// TLS 1.3 is mandatory and authentication is mutual. Both sides verify the
// peer's chain against the cluster CA only; host names are not checked. A
// certificate's Subject CN is the holder's name (node id or client name)
// and its Subject OU its Role, which together form the Identity handed to
// handlers, with the certificate's serial; a client certificate may name its
// principal with a URI SAN meridian://principal/NAME, which takes precedence
// over the CN. A CA, and node and client certificates, are made with NewCA
// and CA.Issue or CA.IssueRequest; LoadCredentials validates a process's own
// files (and its revocation list) and says plainly what is wrong (missing
// file, bad PEM, not signed by the CA, expired or not yet valid, with the
// dates).
//
// Credentials can be replaced at run time (Transport.SetCredentials,
// Dialer.SetCredentials): every handshake reads the current ones. A
// certificate whose serial is on the revocation list is refused at the
// handshake in both directions; on a swap, open connections whose peer's
// certificate is now revoked or no longer verifies are closed with
// application error 0x102 and the reason (ErrForbidden at the caller).
//
// Two ALPNs separate the traffic:
//
//	meridian-node/1    node to node; the dialer must hold a node certificate
//	meridian-client/1  client to node; client or node certificates
//
// Only node certificates may serve. A connection whose certificate role may
// not use its ALPN is closed with application error 0x101 and a reason,
// which the caller sees as ErrForbidden.
//
// # Streams and frames
//
// A bidirectional stream carries one request at a time. On a stream of its
// own, the caller writes one request frame and closes its send side; the
// handler writes zero or more reply frames (streaming replies, e.g. one per
// replica ack) and the transport closes the stream when the handler
// returns. Both sides read to EOF (quic-go only releases a stream's credit
// once both directions are finished). Calls reuse streams: a caller opens a
// reusable stream with TypeStream and sends one request after another on
// it, each request's replies ended by TypeDone (or a TypeError); idle
// streams wait in the pool for the next call to the address, and the peer
// closes one that waited IdleTimeout with TypeStreamIdle (reuse.go has the
// rules, and why).
//
// A frame is a 4-byte big-endian length followed by that many bytes of
// CBOR: one Envelope, encoded as an array
//
//	[V, Type, ID, Deadline, [Traceparent, Tracestate], Payload]
//
// V is the envelope version (1); Type a MsgType (below 16 reserved for this
// package, TypeError = 1 carrying ErrorPayload [Code, Message]); ID the
// request id, echoed by replies; Deadline the caller's deadline in Unix
// nanoseconds or 0; the W3C trace context; and Payload the message, itself
// CBOR, decoded by the receiver with Envelope.Decode.
//
// A message whose envelope is larger than MaxFrame is sent as a run of
// TypeFragment frames, each carrying the message's total length and the
// next piece of its encoding; ReadMessage reassembles it. The total is
// checked against MaxMessage (default 256 MiB, DefaultMaxMessage) first,
// and the buffer grows only as pieces arrive. A message past MaxMessage is
// refused by the sender with ErrFrameTooLarge: nothing is sent.
//
// Limits: a frame's declared length is checked against MaxFrame (default
// 4 MiB, DefaultMaxFrame) before anything more is read; decoding uses
// package codec's bounded decoder (nesting, array and map sizes, no
// indefinite lengths, no trailing bytes). A bad request frame is answered
// with a TypeError reply with code "bad_request"; a handler panic with
// "internal"; a request whose deadline passed before it was served with
// "deadline_exceeded". Nothing a peer sends can crash a node.
//
// A declared length is never allocated up front: a frame body is read into
// a buffer of at most 4 KiB that doubles, capped at the declared length,
// only when full, and a fragmented message's buffer likewise, so a reader
// holds at most about twice the bytes that actually arrived. (Allocating
// the declared length once let 1,000 streams of 4-byte headers, 4 KB of
// traffic, take a node to 3.7 GB; now they cost a few KiB each.)
//
// What one connection can hold in requests still being read is bounded by
// MaxRequestBytesPerConn (default twice MaxMessage, at least one message
// with its framing): bytes read and buffer space a read waits to fill
// count until the request is decoded, and a stream that would pass the
// budget is answered "overloaded" (CodeOverloaded; the request was not
// served and may be retried) and reset. Concurrent requests per connection
// are bounded by MaxIncomingStreams (default 1024). A request must arrive
// with no gap longer than IdleTimeout and, after its first IdleTimeout, at
// an average of at least 64 KiB/s; a stream that trickles is ended without
// a reply. quic-go itself buffers at most its receive windows of unread
// data (6 MiB per stream, 15 MiB per connection, its defaults), which the
// transport drains into the buffers above; those are what the budget
// bounds. The requests being read from one client principal (a
// certificate's role and name) share a budget across its connections too
// (MaxRequestBytesPerClient, default 64 MiB).
//
// Per principal, the connections it holds are bounded
// (MaxConnsPerPrincipal, 64 for clients; MaxConnsPerNode, 256): the one
// past the limit is closed at once with application error 0x103 and a
// reason naming the limit, which a caller sees as ErrUnreachable (nothing
// was served). A client principal's requests are rate-limited by one
// token bucket across its connections (ClientRequestsPerSecond,
// ClientRequestBurst); a request past it is answered CodeOverloaded
// without reaching the handler. Nodes are never rate-limited. Past
// UnvalidatedHandshakeRate new connections a second,
// each must first prove its source address with a QUIC Retry. Refusals are
// logged once per burst per principal. Not bounded here: decoded requests
// while their handlers run (the handler's own limits apply).
//
// # Sent or not: what a failed call tells
//
// A request counts as sent once the stream has accepted every byte of its
// frame (the Write of the frame returned its full length). The handler runs
// only on a complete frame, so before that point the peer cannot have acted
// on the request, and a failure — no connection, a failed or backed-off
// dial, a connection lost while opening the stream or writing the frame —
// is ErrUnreachable: the caller may send the request elsewhere. After it,
// a call that ends without the peer's answer — connection lost, stream
// reset, an unreadable reply, the caller's context ended — is
// ErrOutcomeUnknown: the peer may have applied the request, and a write
// must not be repeated on another node as if it had not (a retried write
// would become a second sibling). ErrOutcomeUnknown wraps its cause, so
// errors.Is(err, context.DeadlineExceeded) still holds for a timeout. An
// answer (a reply, a TypeError reply) is neither. A certificate refusal
// (ErrForbidden) happens before any stream is served.
//
// A killed peer's connection looks open until the idle timeout (QUIC
// ignores ICMP). A Dialer with DialerOptions.VerifyAfter pings a connection
// that has been quiet that long (TypePing = 3, answered by the transport,
// never by the handler) before it sends a request on it; an unanswered ping
// closes the connection and fails the call with ErrUnreachable.
//
// # Usage
//
//	tr, err := wan.Listen(wan.Config{Credentials: creds, ListenAddr: ":7946"},
//		wan.HandlerFunc(func(ctx context.Context, from wan.Identity, req *wan.Envelope, reply wan.Replier) {
//			var p myRequest
//			if err := req.Decode(&p); err != nil {
//				reply.SendError(wan.CodeBadRequest, err.Error())
//				return
//			}
//			res, _ := wan.NewEnvelope(typeMyReply, answer(p))
//			reply.Send(res)
//		}))
//	...
//	req, _ := wan.NewEnvelope(typeMyRequest, &myRequest{...})
//	err = tr.Call(ctx, "10.0.0.2:7946", "node-2", req, func(r *wan.Envelope) error {
//		return r.Decode(&reply)
//	})
//
// # WAN emulator
//
// Emulator delays and drops packets per (source datacenter, destination
// datacenter) inside one process, for meridian dev, tests and benchmarks.
// Wrap each node's socket (Config.WrapConn) with its datacenter, Register
// each node's address, and set links (latency, jitter, loss, down) per
// direction or a default for all inter-datacenter traffic; Partition and
// Heal cut and restore datacenter pairs, Isolate and Restore single nodes.
// Traffic inside a datacenter and to unregistered addresses is not delayed.
// Per-destination packet order is kept. Wrapping a socket disables quic-go's
// GSO and batching, which is fine for latency emulation but not for
// throughput measurements.
package wan

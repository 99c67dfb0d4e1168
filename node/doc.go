// Package node is a running Meridian node: it owns the store, the QUIC
// transport and the ring, coordinates client requests with per-datacenter
// quorums, and serves replica and relay traffic from other nodes.
//
// # Writes
//
// A put is coordinated by a replica of the key, because only a replica that
// serialises updates of the key may mint a new dot (version package). A
// node that receives a put for a key it does not hold forwards it, once, to
// a replica — in its own datacenter first (Riak's put FSM does the same).
// The coordinator applies the write to its store (synced), then sends the
// resulting object to every other replica: directly to those in its own
// datacenter, and as ONE message per remote datacenter to a relay replica
// there, which merges it locally, fans out to its datacenter's other
// replicas and streams their acknowledgements back (Cassandra's cross-DC
// forwarding). The coordinator answers as soon as the W of every named
// datacenter is met; the remaining replica writes complete in the
// background. If W can no longer be met the error names each datacenter
// that fell short.
//
// # Reads
//
// Any node coordinates a read: it asks every replica (local ones directly,
// remote datacenters through a relay), answers once R is met with the merge
// of what it received — all siblings plus the causal context — and then, in
// the background, waits for the stragglers and writes the merged object back
// to every replica that lacked part of it (read repair).
//
// # Membership and handoff
//
// Membership is serf gossip; the ring is computed from the member list on
// every node alike. A peer is used for replica traffic once a QUIC call to
// it succeeded; a failed call takes it out of use at once, and a prober puts
// it back at its first answer. A replica that cannot be written gets a hint
// (sloppy quorum): kept by a fallback of its datacenter or by the node that
// noticed, durable in the store, delivered by merging when the replica is
// back. See docs/architecture.md for the decisions behind it.
//
// # Layout
//
// Node is the wiring and the lifecycle (Start, Close, the store, the
// transport, identity, authorization, audit, telemetry). The state of each
// concern lives in a room, a type that owns it and is reached through its
// methods: peers (peers.go: membership, peer health, and call, the one way
// to send a request to a peer), coordinator (writeahead.go: writes in
// flight), handoff (handoff.go: hint delivery), repairer (repairer.go: the
// repair state) and tombstones (tombstones.go: collection and the read
// gate). The protocols — coordinating puts and gets (put.go, get.go),
// serving replicas (replica.go), repair sessions (repair.go,
// repair_stream.go, schedule.go) — run on Node and use the rooms. See
// "Rooms of a node" in docs/architecture.md for the picture and the seams.
package node

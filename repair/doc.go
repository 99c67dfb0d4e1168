// Package repair is the logic of Meridian's Merkle anti-entropy (Dynamo
// §4.7, made datacenter-aware): trees per token range over the store's
// token-ordered layout, top-down comparison between replicas, the key
// exchange that follows, and the schedule — windows per datacenter pair,
// resumable progress, dirty ranges left by dropped hints, and a byte-rate
// limiter.
//
// The package is pure: no disk, no network, no goroutines, no clock. It
// reads keys through RangeSource (store.Store satisfies it), asks the
// other replica for tree levels through Peer (or the Differ step
// function), takes time as arguments and returns plans. The node wires it
// to the store and to QUIC.
//
// # A repair session
//
// For one Task (a token range of one keyspace between two datacenters),
// the initiator and the responder replica each do:
//
//	tree, err := repair.BuildTree(store, ks, task.Range, depth)
//
// with the depth the initiator picked (repair.DepthFor(its key count)) and
// sent in the session's first message. Then:
//
//  1. Trees. The initiator runs DiffWithPeerStride(ctx, tree, peer, 2)
//     (or drives a Differ itself); the responder answers each request
//     with tree.Level. Equal trees cost one hash.
//  2. Digests. The initiator sends Digests(KeysInLeaves(store, ks, range,
//     depth, leaves)): key and 16-byte KeyHash per key under the
//     differing leaves.
//  3. Differences. The responder reads its own keys under the same leaves
//     and answers with CompareDigests: its objects whose hash differs or
//     that the initiator lacks, and the keys it lacks.
//  4. Objects. The initiator calls Reconcile(its objects for those keys,
//     the responder's objects), merges toLocal into its store and sends
//     toRemote, which the responder merges.
//
// Digest and object lists can outgrow one message (a replica that lost
// a range differs in every leaf): BatchDigests cuts the differing leaves
// into batches whose digests fit a byte budget, and the responder answers
// each batch with CompareDigests over the keys under its leaves only —
// batch by batch it finds exactly what one exchange would
// (TestBatchDigestsCoversEveryLeafWithinBudget). The node does not build a
// batch's answer as one message either: the responder computes what
// CompareDigests would while it scans and streams it in messages of a
// bounded size and element count, the initiator reconciles and merges each
// message as it arrives and pushes what the responder lacks in messages of
// the same bounds; only a single object larger than that bound travels
// alone, in fragments up to the node's message limit (node/repair_stream.go).
//
// Every merge is version.Merge inside a store update: repair joins, never
// overwrites, so a sibling survives unless the receiver had seen and
// superseded it, and a value a tombstone superseded never comes back.
// Objects from the peer must pass version.Object.Validate first. Each
// side's scan is one point-in-time iterator but the two are taken at
// different instants, so writes in flight show up as differences; merging
// them is harmless and idempotent.
//
// # Decisions
//
// Leaf hash. A leaf's digest is SHA-256 over its key count and the XOR of
// the KeyHash of its keys, as in Riak's Tictac AAE: XOR is its own
// inverse and order-independent, so a tree can be built from a scan or
// kept current key by key (Add, Remove, Replace) and both give the same
// bits. Hashing the count in keeps a key added twice from cancelling out.
// XOR is linear, so someone who chooses many keys' contents AND which
// writes a replica misses could in theory hide a difference; that is not
// a threat repair defends against (a sum mod 2^128 would not either).
//
// Key hash. KeyHash covers exactly what version.Equal compares: the key,
// the clock (zero counters dropped), each sibling's dot, deleted flag and
// SHA-256 of its value — not WrittenAt nor Trace, which are equal on
// every replica for the same dot anyway. It is the deterministic CBOR of
// codec.Marshal (format-versioned), so every node computes the same bytes.
// Hashes are SHA-256 truncated to 128 bits: a missed difference is a
// 2^-128 accident, and the tree exchange is half as big as with 256 bits.
// Inner nodes hash their two children, with leaf and node domains
// separated (RFC 6962 §2.1). Inner digests are refreshed lazily, so Add
// costs one key hash, not a path of hashes.
//
// Leaves. A range is cut by token into 2^depth leaves of equal width;
// Range follows store.Scan (To == 0 is the end of the ring, ranges never
// wrap). Keys spread uniformly over tokens (xxhash), so leaves hold
// similar counts.
//
// Depth. Diff bytes fall as leaves shrink (fewer innocent keys travel
// with each guilty one) while the tree exchange grows by two hashes per
// differing key per level. DepthFor aims at about two keys per leaf, where
// the total is lowest in BenchmarkDiff (100k keys: depth 16 sends 3.78×
// the differing bytes in all, 17 sends 3.88×, 14 sends 4.17×), capped at
// MaxAutoDepth = 17 (about 7 MiB per tree). DefaultDepth (10) is only what
// a 0 depth means.
//
// Build by scan, not kept current. The node should build both trees with
// BuildTree when a session starts, not maintain them on every write:
//
//   - Correctness. A scan hashes what is on disk now. Repair exists for
//     what the write path missed or lost — a hint dropped, a crash between
//     a write and a tree update, a flipped bit — and a tree kept current by
//     the write path would faithfully hide exactly those. (Riak pairs its
//     incremental trees with periodic rebuilds for this reason.)
//   - Cost. A tree kept current costs about 1.8 µs on every write (two key
//     hashes), all day, and keeping one per keyspace and range in memory at
//     the depth that makes exchanges cheap would take GiBs (3.5 MiB per
//     100k keys at depth 16). A scan costs about 1.5 µs per key, paid only
//     when a window is open and a range is being repaired; the same figure
//     as populating a tree with Adds (BenchmarkIncrementalBuild100k).
//   - Simplicity. Nothing to persist, warm up after a restart or keep
//     consistent with concurrent writers.
//
// Add, Remove and Replace stay: the property tests use them as a second,
// independent way to compute a tree, and a later continuous pass over hot
// ranges may keep shallow trees current between rebuilds.
//
// Comparison. Differ asks for the root, then for the children of the
// nodes found to differ, level by level, so hashes exchanged grow with
// differing leaves × depth, not with tree size (TestDiffCostFollowsDifferences
// bounds it by 1 + 2·d·depth). Across regions use stride 2: descending two
// levels per round trip halves the round trips (17 → 9 at depth 16) for no
// more hashes in BenchmarkDiffStride (1801 vs 1889); stride 4 costs 1.7×
// the hashes.
//
// Key exchange. Sending digests first (steps 2–4 above) costs one round
// trip more than sending every object under the differing leaves, but
// sends far less: 1.68× the differing bytes against 2.55× at depth 16, and
// 18× against 86× at depth 10, where leaves hold ~100 keys. Whole objects
// travel, not deltas: a delta that omitted a sibling both sides hold would
// make the receiver's Merge drop it (the sender's clock covers it).
// Reconcile sends an object only to a side that does not already descend
// from it; a key where one side is stale costs the stale copy one way
// (step 3) and the fresh one back.
//
// Windows. Cron expressions (github.com/robfig/cron/v3, five fields or
// @daily-style descriptors) in UTC only: no time zone database in a
// FROM scratch image, and no window that vanishes or doubles at a DST
// change. An empty Cron is always open, for the slow continuous pass
// inside a datacenter. Overlapping openings join. ValidateWindows lists
// every problem, each naming the window by index and pair.
//
// Planning (decide, then do). Plan returns at most one task per pair and
// keyspace with an open window: its oldest dirty range, else the next
// range of its pass, clipped to one of Progress.Segments (default 256)
// equal ring segments. A new pass starts once per opening of a cron
// window (a pass that finishes early waits for the next night) and at most
// every PassInterval (always-open windows: DefaultContinuousInterval, 1h).
// A window with a Spread paces its passes: segment i of n waits until
// PassStarted + i·Spread/n, so a background pass (the node's default
// when no window is configured) is a steady trickle, not a burst.
// Dirty tasks come first, then the pairs whose last full repair is oldest.
// Dirty ranges wait for their pair's window like everything else: the
// windows exist to keep WAN traffic out of business hours, the
// continuous pass inside a datacenter (always open) takes a dirty range
// at once, and `meridian repair --now` can plan with an always-open window
// to force one.
//
// Progress. A Progress per pair and keyspace records the ranges of the
// current pass already done (merged intervals, so a checkpoint stays
// small), counters, and the bounds of the last full pass. The node
// persists it with EncodeProgress (deterministic CBOR, versioned) after
// every completed task, so a restart or a closing window loses at most
// the task in flight (one segment). LastFullStarted is the tombstone
// horizon: a tombstone written before the minimum LastFullStarted over
// every pair of datacenters holding its keyspace (each datacenter with
// itself included) has been compared everywhere and may be collected
// after its grace.
//
// Dirty ranges. When a hint for a replica in datacenter X is dropped, the
// node records the key's token and the hint's time span in a DirtySet for
// every pair (X, Y) holding the keyspace. Entries widen to their ring
// segment (at most one per keyspace, pair and segment, however many hints
// drop) and are cleared only by a repair of the segment that started
// after the last write they stand for.
//
// Rate. Limiter is a token bucket in GCRA form: one instant of state,
// exact integer arithmetic, injected time. A reservation larger than the
// burst is delayed, never refused. The node keeps one per destination
// region, at the open window's BytesPerSecond (default 24 MiB/s, as
// Cassandra's inter_dc_stream_throughput_outbound).
//
// # Measurements
//
// go test ./repair -bench . (AMD EPYC, 2 cores; 100k keys, keys of 13
// bytes, values of 64–191 bytes, one sibling each; an in-memory source, so
// store reads and decoding come on top):
//
//	BuildTree, depth 10                 154 ms   1.54 µs/key
//	BuildTree, depth 16                 150 ms   1.51 µs/key
//	100k Adds + root, depth 16          172 ms
//	Replace (one write), depth 16       1.8 µs   3.9 µs if the root is read after every write
//
//	one session, 0.1% of keys diverged (100 keys: new, updated, concurrent,
//	deleted, lost — half on each side; 17.6 kB must cross):
//	depth  leaves  hashes  rounds  tree B   key-exchange B  sent/diff  naive/diff  with tree
//	10       94      707     11    13.5 k     316.5 k        18.0        86.0        18.8
//	14       99     1483     15    29.0 k      44.2 k         2.52        6.90        4.17
//	16       99     1879     17    36.9 k      29.4 k         1.68        2.55        3.78
//	17      100     2077     18    41.1 k      27.1 k         1.54        1.86        3.88
//	nothing diverged, any depth: 1 hash, 1 round, 21 B.
//
// "sent/diff" is the key exchange (steps 2–4) over the bytes that must
// cross, "naive" sends every object under the differing leaves instead,
// "with tree" adds the tree comparison. The goal of ≤ 2 plus the
// tree exchange holds at DepthFor's depth; the tree exchange itself is
// about twice the differing bytes at 0.1% divergence, and one hash when
// nothing differs.
package repair

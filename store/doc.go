// Package store keeps a node's versioned objects on local disk, in Pebble
// (github.com/cockroachdb/pebble/v2). It is, with wan, one of the two
// packages of Meridian that do I/O; everything above it sees only
// *version.Object values.
//
//	s, err := store.Open("/var/lib/meridian/data", nil) // nil options: defaults
//	if err != nil { ... }
//	defer s.Close()
//	obj, changed, err := s.Update("users", key, func(cur *version.Object) (*version.Object, error) {
//		return cur.Update(ctx, nodeID, version.Write{Value: v}), nil
//	})
//	obj, err = s.Get("users", key)
//	err = s.Scan("users", from, to, func(tok uint64, key []byte, obj *version.Object) error { ... })
//
// # Durability
//
// Update returns only after its write is in the write-ahead log and the log
// is fsynced (pebble.Sync); callers acknowledge a replica write only after
// Update returned without error (Dynamo §4.5's "durable write" on each
// replica of the preference list). Concurrent Updates of different keys
// share fsyncs through Pebble's commit pipeline (group commit), so
// throughput grows with concurrency while every write stays synced.
//
// Per-key read-modify-write is serialised by 4096 striped locks chosen by
// the key's ring token: the fn of an Update always sees the result of every
// Update of the key that returned before, which is what version.Object.Update
// needs to mint unique dots. Get takes the same stripe for reading, so it
// never returns a write whose fsync is still in flight; Scan does not lock
// and may see such writes (it feeds repair, which only joins).
//
// An fsync that fails is never retried and never acknowledged (see the
// PostgreSQL "fsyncgate" lesson): Pebble reports a failed WAL commit as a
// fatal error. When that happens inside a Store call, the call returns an
// error wrapping ErrFailed and the Store refuses every later read and
// write; the node must restart (after the disk is checked), replaying the
// log. A fatal Pebble error on one of Pebble's own background goroutines
// (failed MANIFEST sync, detected data corruption) panics, which ends the
// process just as Pebble's default logger would (it calls os.Exit).
//
// # Key layout
//
// Every Pebble key starts with a one-byte record kind:
//
//	'o'  an object (this file's records)
//	'h'  a hinted-handoff record (hints.go)
//	'r'  repair state: checkpoints, last completed repairs (repairstate.go)
//	't'  the tombstone index: arrival time per tombstone (tombstones.go)
//	'm'  store-wide records: the dot floor (tombstones.go)
//
// An object key is then
//
//	'o' | uvarint(len(keyspace)) | keyspace | token (8 bytes, big-endian) | key
//
// where token is placement.KeyToken(key). Because the keyspace name is
// length-prefixed (and uvarints are prefix-free), the keys of two keyspaces
// never interleave, even when one name is a prefix of the other; because
// the token follows in big-endian order, the keys of one keyspace sort by
// ring position, so one token range of one keyspace is one contiguous
// iterator scan (what Merkle tree builds and anti-entropy need).
//
// A hint key is
//
//	'h' | uvarint(len(target)) | target | uvarint(len(keyspace)) | keyspace | token | key
//
// so the hints held for one target node are one contiguous range.
//
// # Value format
//
// A value is one format-version byte (currently 1) followed by
// codec.Marshal(*version.Object) — deterministic CBOR, decoded with codec's
// bounded decoder. A value that is empty, has an unknown format byte or
// does not decode yields an error wrapping ErrCorrupt that names the
// keyspace and key; decoding never panics.
//
// A hint's value is one format-version byte (currently 1) followed by the
// CBOR array [created (Unix nanoseconds), trace id + span id, object].
//
// With encryption at rest (Options.Keyring), object and hint values are
// stored sealed: the format above is the plaintext of an AES-256-GCM
// envelope that names its key id and is bound to its Pebble key (seal.go).
// Values written before encryption was turned on keep their plain form
// and stay readable; Reencrypt seals them, and rewrites values sealed
// under an older key, so that key can be removed. Pebble keys (keyspace
// names, user keys, hint targets), the tombstone index (arrival times),
// repair state (checkpoints, progress, tree positions; no values) and the
// identity file are not sealed.
//
// # Hinted handoff
//
// When a replica cannot be written, the coordinator (or a fallback node of
// the replica's datacenter, for a sloppy quorum) keeps the object as a hint
// for it (Dynamo §4.6) and delivers it, by merging, once the replica is back:
//
//	stored, err := s.AddHint(target, "users", key, obj, traceID, now, store.HintLimits{})
//	err = s.Hints(target, 256, func(h store.Hint) error {
//		// send h.Object to h.Target, wait for its synced merge, then:
//		_, err := s.DeleteHint(h) // only if no newer data was merged in meanwhile
//		return err
//	})
//	dropped, err := s.ExpireHints(now, store.DefaultHintMaxAge) // periodically
//
// A coordinator queues its own write for the key's other replicas before
// any copy leaves (write-ahead hints, writeahead.go): UpdateQueued commits
// the object and a hint per target in one synced batch, and ClearHints
// later removes, unsynced, the hints of the targets that acknowledged.
// These hints name the stored object by its version vector rather than
// copy it (hintFormatRef), so a write costs each target a small record
// whatever the size of its value; delivery reads the object:
//
//	obj, _, dropped, err := s.UpdateQueued("users", key, fn, store.Queue{Targets: others, Trace: traceID, Now: now})
//	// ... the copies are acknowledged by acked ...
//	_, err = s.ClearHints("users", key, obj, acked)
//
// Hints are durable like objects: AddHint and DeleteHint return after an
// fsync. Adding merges into the hint already held for the same target and
// key, so a node holds one hint per (target, keyspace, key) whatever the
// number of writes it stands in for. Each target's hints are bounded in
// bytes (AddHint refuses what would pass HintLimits.MaxBytesPerTarget) and
// in age (ExpireHints drops hints first stored more than MaxAge ago, default
// 3h as Cassandra's max_hint_window); what is refused or expired must be
// brought over by repair. HintStats, kept in memory and rebuilt by a scan of
// the hint keys at Open, gives count and bytes per target.
//
// # Pebble settings
//
// The defaults suit a small node (2 cores, a few GiB of RAM):
//
//   - block cache 64 MiB (Options.CacheSize);
//   - memtables of 8 MiB, at most 4 queued (≤ 32 MiB) so a write burst does
//     not stall while one memtable flushes;
//   - 10-bit bloom filters on every level, since nearly every read is a
//     point Get of a key that may not exist;
//   - one compaction at a time, two when Pebble sees compaction debt;
//   - L0 stops writes at 24 sublevels (Pebble's default is 12; Meridian has
//     no admission control of its own, so it tolerates a deeper L0 before
//     stalling);
//   - no WALMinSyncInterval: group commit comes from concurrency, never from
//     delaying a lone writer;
//   - FormatMajorVersion pinned at pebble.FormatTableFormatV6, which includes
//     WAL sync chunks (a torn log tail is told apart from corruption on
//     replay) and checksummed sstable footers. Raising it is a one-way
//     on-disk migration: do it deliberately, never by following FormatNewest.
//
// When Options.FS is nil the real disk is used through Pebble's
// disk-health-checking wrapper, which reports operations slower than 5s as
// "disk slow" warnings on the Logger. Pebble's messages go to
// Options.Logger (info) and to it or slog.Default() (errors).
package store

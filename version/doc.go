// Package version holds Meridian's causal vocabulary: dots, version vectors
// and the versioned Object every replica stores.
//
// An Object follows the semantics of Riak 2.0's dotted version vector sets
// (Preguiça et al., "Dotted Version Vectors: Efficient Causality Tracking for
// Distributed Key-Value Stores"): every sibling carries the dot (actor,
// counter) of the write that created it, and the object carries one version
// vector that summarises everything the replica has seen. A write that
// carries the causal context of a read supersedes every sibling that context
// covers; writes that did not see each other stay side by side as siblings.
// Because siblings are identified by dots rather than by whole vectors, the
// number of siblings is bounded by true concurrency, not by the number of
// retries or replicas (no sibling explosion).
//
// Only a replica that serialises updates of a key may create a dot, and only
// with its own actor id (Object.Update). Every other path joins objects with
// Merge, which never loses a sibling the other side has not seen and never
// resurrects one it has superseded.
//
// The package is pure: no I/O, no clock, no goroutines.
//
//	obj := version.New()
//	obj = obj.Update(nil, "n1", version.Write{Value: []byte("a")})
//	ctx := obj.Context()                 // what a read hands the client
//	obj = obj.Update(ctx, "n1", version.Write{Value: []byte("b")}) // supersedes "a"
package version

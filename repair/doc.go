// Package repair will hold Meridian's Merkle anti-entropy: trees per token
// range over the store's token-ordered layout, top-down tree comparison
// between replicas, and repair sessions on scheduled cross-region windows
// with WAN byte budgets. Its logic stays pure — it computes on a range
// iterator and a peer that answers tree levels — so its tests need neither
// disk nor network. Until it lands, replicas converge through read repair
// (node) alone.
package repair

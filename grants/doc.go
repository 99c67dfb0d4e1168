// Package grants holds Meridian's authorization state and decisions: which
// principal (a client certificate's name) may read, write or administer
// which keyspace.
//
// The grant table is a set of facts (principal, keyspace, permission) →
// granted or revoked, each stamped with a hybrid logical clock and the id of
// the node that wrote it. Two tables merge entry by entry, the later stamp
// winning (last writer wins per fact), so merging is commutative,
// associative and idempotent: nodes that exchange their tables in any order,
// any number of times, converge on the same table, as Cassandra's
// system_auth keyspace does by replication. A revoke is a fact too (a
// tombstone with Granted false), so it wins over the grant it follows on
// every node.
//
// Deciding is pure: Table.Allows answers whether a principal holds a
// permission on a keyspace, directly or through the keyspace "*" (every
// keyspace) or through admin, which implies read and write. The package
// does no I/O, starts no goroutines and reads no clock: time comes in as an
// argument.
//
//	var clock grants.Clock
//	t := grants.NewTable()
//	e, _ := grants.NewEntry("alice", "default", grants.Read, true, clock.Next(now, "east-1"))
//	t.Merge(e)
//	t.Allows("alice", "default", grants.Read) // true
package grants

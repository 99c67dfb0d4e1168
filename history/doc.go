// Package history records what clients did to a cluster and checks the
// record against the state the cluster ends in: the properties of
// TESTING.md that a fault run must keep.
//
// Every write carries a value unique to it, so each check is linear: a
// value read or found names its writer. A write that reads first records
// the values its read returned (Op.Saw): its causal context covers them, so
// it may legitimately supersede them.
//
//	rec := &history.Recorder{}
//	rec.Add(history.Op{Kind: history.Put, Key: "k", Value: "c1-17", Saw: []string{"c2-3"}, Outcome: history.OK})
//	...
//	rep := history.Check(rec.Ops(), finalState)
//	if !rep.OK() { t.Fatal(rep) }
//
// The package is pure: no I/O, no clock; callers pass times in.
package history

// Package consistency is the quorum arithmetic of Meridian: consistency
// levels, explicit per-datacenter quorum vectors, and the tally a
// coordinator keeps while replica acknowledgements arrive.
//
// A request names its W (writes) or R (reads) either by level — ONE,
// LOCAL_ONE, LOCAL_QUORUM, EACH_QUORUM, QUORUM, ALL, with Cassandra's
// meaning — or as an explicit vector such as "east=2,west=1". Resolve turns
// that, the keyspace's replication map and the coordinator's datacenter into
// a Need: a count per datacenter plus an optional total across datacenters
// (ONE and QUORUM count replicas anywhere). A Tally then decides, ack by
// ack, whether the need is met, still reachable, or impossible; in the last
// case its QuorumError names each datacenter that fell short.
//
//	spec, _ := consistency.Parse("east=2,west=1")
//	need, _ := spec.Resolve(map[string]int{"east": 3, "west": 3}, "east")
//	t := consistency.NewTally(need, map[string]int{"east": 3, "west": 3})
//	t.Ack("east"); t.Ack("east"); t.Ack("west")
//	t.Met() // true
//
// The package is pure: no I/O, no clock.
package consistency

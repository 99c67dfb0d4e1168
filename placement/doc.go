// Package placement decides which nodes hold a key: a consistent-hashing ring
// with virtual nodes (Dynamo §4.2, §6.2) and datacenter- and rack-aware
// preference lists (Dynamo §4.3, made per-datacenter like Cassandra's
// NetworkTopologyStrategy), plus the same-datacenter fallbacks that a sloppy
// quorum writes hints to (Dynamo §4.6).
//
// It is pure: no I/O, no goroutines, no clock, no global randomness. A Ring
// is an immutable function of the member list, so every node that knows the
// same members computes the same plans, without gossiping tokens. Build a new
// Ring when membership changes.
//
// # Usage
//
//	ring, err := placement.NewRing(members, 0) // 0 = DefaultVNodes
//	if err != nil { ... }
//	plan := ring.Plan(placement.KeyToken(key), placement.Replication{"us-east": 3, "eu-west": 2})
//	for dc, replicas := range plan.Replicas { ... }  // replicas[0] is the DC's primary
//	for dc, missing := range plan.Short { ... }      // the DC cannot hold that many copies
//	standIns := plan.Fallbacks["us-east"]            // hint targets when a replica is down
//
// # Decisions
//
//   - A member's v-th token is xxhash64(ID + "#" + decimal(v)). This is a
//     compatibility contract: changing it, or a node's ID, moves data.
//   - Each datacenter is placed on a ring of its own members' tokens, so
//     joins and leaves in one datacenter never move data in another. A join
//     moves about 1/N of that datacenter's primaries, all to the newcomer; a
//     leave moves the leaver's share only (see TestMovement: 9.8% for the
//     10th node of a DC, 9.7% when one of 9 leaves).
//   - Inside a datacenter replicas go to unused racks first; a rack gets a
//     second replica only when every rack already has one. Replicas and
//     fallbacks are both listed in ring-walk order.
//   - A replication count larger than the datacenter is not an error: Plan
//     places what it can and reports the rest in Short, so the coordinator can
//     fail a request that needs the missing copies with a precise message.
//
// # Balance
//
// Tokens are pseudo-random, so a node's share of its datacenter's ring
// deviates from the fair share 1/N by about 1/sqrt(V) (one standard
// deviation). Measured with 3 datacenters of N nodes ("dev" is the worst
// node's relative distance from 1/N across all 30 or fewer nodes, "max/min"
// the largest ratio of two owners in one datacenter; the random IDs come from
// a fixed seed, and TestBalanceTable recomputes every figure below and fails
// if one differs, and checks the 1/sqrt(V) trend and the ±20% bound at
// DefaultVNodes):
//
//	V     N   IDs "<dc>-<i>"     random IDs, 20 clusters
//	          dev     max/min    median dev   worst dev
//	16    3   ±41.4%  2.09       ±29.4%       ±51.8%
//	16    5   ±60.1%  3.12       ±41.8%       ±71.6%
//	16    10  ±49.8%  2.77       ±62.0%       ±79.2%
//	64    3   ±12.7%  1.28       ±17.1%       ±27.4%
//	64    5   ±23.5%  1.56       ±21.6%       ±35.9%
//	64    10  ±24.0%  1.63       ±26.7%       ±40.7%
//	256   3   ± 5.5%  1.11       ± 7.7%       ±13.8%
//	256   5   ±10.3%  1.18       ±10.6%       ±14.5%
//	256   10  ±18.3%  1.36       ±13.2%       ±16.7%
//	512   3   ± 3.8%  1.08       ± 6.2%       ± 9.7%
//	512   5   ± 9.2%  1.18       ± 9.4%       ±12.2%
//	512   10  ± 9.6%  1.14       ± 9.2%       ±15.3%
//	1024  3   ± 2.8%  1.05       ± 3.8%       ± 7.1%
//	1024  5   ± 6.5%  1.11       ± 5.7%       ± 9.4%
//	1024  10  ± 6.6%  1.12       ± 6.4%       ± 8.7%
//
// DefaultVNodes is 256: the hottest node typically carries 10–15% more than
// its share and stays within ±20% in all but a few percent of clusters (in one
// run of 100 random 3×10 clusters, 4 had a node beyond ±20%, the worst ±24%).
// Below 256 the imbalance is too large to plan capacity around; 1024 halves
// it again, at four times the token ranges that repair and hinted handoff
// track and a few milliseconds per ring build. Clusters that need tighter
// balance can configure V=512 or 1024; all nodes must agree on V.
//
// Plan costs about 1.3µs and 7 allocations for 3 DCs × 10 nodes × 256 vnodes
// (BenchmarkPlan): a binary search per datacenter, then a walk of about
// N·ln N vnodes to order that datacenter's nodes, independent of V.
package placement

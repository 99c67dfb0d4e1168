// Package sim runs a Meridian cluster inside one process on a simulated
// network, for tests that put the real nodes (real QUIC, real serf and
// memberlist, real Pebble on an in-memory filesystem that can lose what was
// not synced) through faults in simulated time.
//
// # The network
//
// A Network holds hosts grouped in regions. Endpoints are net.PacketConns
// (node.Options.PacketConn and client.Config.PacketConn take them, so QUIC
// runs on them unchanged); GossipTransport is a memberlist transport
// (node.Options.GossipTransport) whose datagrams and streams cross the
// same network. Between two regions, or inside one, a Link gives latency,
// jitter (which reorders packets) and loss; CutRegions and CutHosts drop
// traffic in one direction or both (symmetric and asymmetric partitions,
// and bridges: A and B cut, both still reaching C); Isolate drops all of
// one host's traffic. Stats counts what was delivered, lost and cut, so a
// fault test can prove its fault happened.
//
// # Time and seeds
//
// Everything is meant to run inside a testing/synctest bubble: sleeps,
// timeouts, tickers and time.Now are simulated, so a minute-long partition
// costs the CPU it takes, not a minute, and no test waits on the wall
// clock. Per-node clocks (Options.Clock) skew regions against each other.
//
// A seed drives the network's choices (each directed pair of hosts draws
// loss and jitter from its own generator), and the fault tests derive the
// workload's keys and steps and the fault's schedule from it: a failing
// seed replays the same faults at the same simulated instants against the
// same load (the fault tests also seed crypto/rand and math/rand, which
// TLS, QUIC and memberlist draw from). Go's scheduler and map order are not
// under the seed, so a replay is close (in the fault matrix, acknowledged
// writes agree to a few in a thousand) but not bit-for-bit the same
// history.
//
// # The cluster
//
// NewCluster starts regions × nodes, each on a host of its own, with
// certificates from a CA made for the run. Kill stops a node as a crashed
// process would (no leave); PowerLoss also throws away what its disk had
// not synced (pebble's CrashClone); Start brings it back on its disk;
// FailSyncs makes its fsyncs fail (errorfs); Stop closes it cleanly.
// Options.Node sets what else a node's Options carry (a tracer provider).
// Client gives a client in a region, Dial one of any configuration;
// Endpoint a socket of its own for a wan dialer or listener a test drives
// itself, and Credentials certificates from the cluster's CA. Scan reads every node's store directly, independently of every
// request path, for the convergence check.
package sim

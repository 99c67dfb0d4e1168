// Package bench generates YCSB-style load against a key-value store and
// reports what it measured. It knows nothing of Meridian's nodes: a target
// plugs in through Driver, so the same workload, key chooser, threads and
// value size drive Meridian and a peer (etcd) alike.
//
// The core workloads are YCSB's (Cooper et al., "Benchmarking Cloud
// Serving Systems with YCSB", SoCC 2010): A (50 % reads, 50 % updates), B
// (95/5), C (reads only), F (50 % reads, 50 % read-modify-writes) and a
// write-only mix. Keys come from a uniform chooser or YCSB's scrambled
// zipfian one (constant 0.99).
//
// A run is closed-loop (Threads workers, each issuing its next operation
// when the last returns) or open-loop (operations scheduled at a fixed
// Rate). An open-loop operation's latency is measured from the time the
// schedule intended it to start, not from when a worker got to send it, so
// queueing behind an overloaded target shows up in the percentiles instead
// of being omitted ("coordinated omission", Gil Tene).
//
// Latencies go into HDR histograms (microsecond resolution, three
// significant digits); a Result holds ops/s and p50/p99/p99.9 per operation
// and consistency level, and a Report renders runs as JSON or Markdown.
//
//	gen, _ := bench.NewGenerator(bench.Spec{Workload: bench.WorkloadA, Records: 1000, ValueSize: 1000, Distribution: bench.Uniform})
//	res, err := bench.Run(ctx, driver, gen, bench.RunOptions{Threads: 16, Duration: 30 * time.Second, Consistency: "LOCAL_QUORUM"})
package bench

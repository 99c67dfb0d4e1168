// Package drill runs a regional failover drill against a live cluster: a
// recorded workload of unique values (package workload) runs through a
// baseline, the loss of one region (taken away by a Driver), the outage
// and the region's return, until the cluster has converged; then every
// acknowledged key is read back from every replica and the history is
// checked (package history).
//
// The Report says what a region loss costs and whether failing back is
// safe: availability, errors and latency per phase and per client region,
// hints, the RPO (acknowledged writes the lost region did not hold at the
// moment it was lost), the time to converge, acknowledged writes lost and
// deletes undone (both must be 0), and the fail-back verdict. docs/drill.md
// defines every number.
//
//	rep, err := drill.Run(ctx, drill.Options{Client: cfg, Region: "west", Down: 30 * time.Second, Driver: drill.NewFence(cfg, "west", nil)})
//	rep.WriteMarkdown(os.Stdout)
package drill

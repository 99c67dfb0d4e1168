// Package client is the Go client of Meridian.
//
//	cfg, _ := client.LoadConfig("client.yaml")      // written by meridian dev
//	c, _ := client.Dial(ctx, cfg)
//	defer c.Close()
//	_, _ = c.Put(ctx, []byte("k"), []byte("v"), nil) // keyspace default consistency
//	res, _ := c.Get(ctx, []byte("k"), &client.ReadOptions{Consistency: "east=2,west=1"})
//	// res.Values holds every sibling; pass res.Context to the next write to
//	// supersede them:
//	_, _ = c.Put(ctx, []byte("k"), []byte("merged"), &client.WriteOptions{Context: res.Context})
//
// A request goes to a node of the client's own datacenter; when none
// answers it fails over to the other datacenters' nodes in configured order.
// Connections to candidates are raced (a new one every 200ms without a
// connection), so a dead region costs a few hundred milliseconds, not the
// deadline; nodes that failed are remembered, tried last, and probed back.
// A write goes to one node at a time and is sent to another only when it
// certainly did not leave: one that reached a node and got no answer fails
// with ErrOutcomeUnknown (it may have been applied; read before writing
// again) rather than becoming a second sibling.
//
// Failures are typed: errors.As(err, new(*client.QuorumError)) gives the
// per-datacenter shortfall (and, for a write, where it landed: Landed);
// *client.Error carries the node's error code; errors.Is(err, ErrNoNodes)
// means the request reached no node.
package client

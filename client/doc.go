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
// Failures are typed: errors.As(err, new(*client.QuorumError)) gives the
// per-datacenter shortfall; *client.Error carries the node's error code.
package client

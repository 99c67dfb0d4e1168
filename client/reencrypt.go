package client

import (
	"context"

	"github.com/meridian-kv/meridian/api"
)

// Reencrypt asks a node to re-seal its stored values under its active
// encryption key, and with all set to have every node of the cluster do
// so; it reports per node. It takes as long as the slowest node's store
// scan: give ctx a deadline to match. Running it again is harmless.
func (c *Client) Reencrypt(ctx context.Context, all bool) (*api.ReencryptResponse, error) {
	var res api.ReencryptResponse
	return &res, c.do(ctx, "reencrypt", "", "", api.TypeReencrypt, &api.ReencryptRequest{All: all}, api.TypeReencryptReply, &res)
}

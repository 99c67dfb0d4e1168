package client

import (
	"context"
	"fmt"
	"time"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/wan"
)

// Nodes returns the nodes of the client's configuration.
func (c *Client) Nodes() []Node { return append([]Node(nil), c.cfg.Nodes...) }

// Fence tells node n to cut region off for d (an empty region or d ≤ 0
// lifts its fence) and returns n's fence now up; see api.FenceRequest. It
// goes to n only, never to another node: a drill fences every node.
func (c *Client) Fence(ctx context.Context, n Node, region string, d time.Duration) (*api.FenceResponse, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	req := &api.FenceRequest{Region: region, Millis: d.Milliseconds()}
	if region == "" || d <= 0 {
		req = &api.FenceRequest{}
	}
	env, err := wan.NewEnvelope(api.TypeFence, req)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	var res api.FenceResponse
	var cerr *api.ClientError
	err = c.dialer.Call(ctx, n.Addr, n.ID, env, onReply(api.TypeFenceReply, &res, &cerr, nil))
	if err != nil {
		return nil, fmt.Errorf("client: fence on %s (%s): %w", n.ID, n.Addr, err)
	}
	if cerr != nil {
		return nil, cerr
	}
	return &res, nil
}

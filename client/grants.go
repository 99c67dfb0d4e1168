package client

import (
	"context"

	"github.com/meridian-kv/meridian/api"
)

// ErrForbidden matches (errors.Is) a request the node refused because the
// client's principal (its certificate's name) lacks a grant; the error's
// message names the missing permission and how to grant it.
var ErrForbidden = api.ErrForbidden

// Grant gives principal (a client certificate's name) permission ("read",
// "write" or "admin") on keyspace ("*" = every keyspace; "" = the client's
// keyspace). The caller needs admin on that keyspace. The grant is stored
// on the node that answers and replicated to every node of every region;
// the response says how many took it at once.
func (c *Client) Grant(ctx context.Context, principal, permission, keyspace string) (*api.GrantResponse, error) {
	return c.grant(ctx, principal, permission, keyspace, false)
}

// Revoke takes permission on keyspace away from principal, as Grant gives
// it. A principal may keep the permission through another grant (admin
// implies read and write; "*" covers every keyspace): the response's
// Warning says so.
func (c *Client) Revoke(ctx context.Context, principal, permission, keyspace string) (*api.GrantResponse, error) {
	return c.grant(ctx, principal, permission, keyspace, true)
}

func (c *Client) grant(ctx context.Context, principal, permission, keyspace string, revoke bool) (*api.GrantResponse, error) {
	op := "grant"
	if revoke {
		op = "revoke"
	}
	req := &api.GrantRequest{Principal: principal, Permission: permission, Keyspace: c.ks(keyspace), Revoke: revoke}
	var res api.GrantResponse
	if err := c.do(ctx, op, req.Keyspace, "", api.TypeGrant, req, api.TypeGrantReply, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Grants lists the grants the client's principal may see: its own, and
// every grant on the keyspaces it administers (all of them for a cluster
// administrator), of principal only when it is not "".
func (c *Client) Grants(ctx context.Context, principal string) (*api.GrantsResponse, error) {
	var res api.GrantsResponse
	if err := c.do(ctx, "grants", "", "", api.TypeGrants, &api.GrantsRequest{Principal: principal}, api.TypeGrantsReply, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

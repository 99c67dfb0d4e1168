package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/grants"
	"github.com/meridian-kv/meridian/wan"
)

// Authorization. A client certificate's common name is its principal. What
// a principal may do is decided by the grant table (package grants), kept
// by every node in its store and replicated to every node in every region
// (grantsync.go), plus the superusers of the configuration. Nothing is
// allowed by default:
//
//	get                        read on the keyspace
//	put, delete                write on the keyspace
//	inspect, repair, repair status   admin on the keyspace
//	grant, revoke              admin on the keyspace of the grant ("*": cluster admin)
//	status, ring               admin on "*" (cluster admin)
//	grants                     anyone: the caller's own grants, and all grants of keyspaces it administers
//
// Node certificates are nodes, not clients: they may send node-to-node
// messages and forwarded writes, nothing else.

// AuthConfig configures authorization.
type AuthConfig struct {
	// Superusers are principals (client certificate names) with admin on
	// every keyspace, whatever the grant table says: the bootstrap, as
	// Cassandra's superuser is. List the same on every node. meridian dev
	// lists "admin", the name of the client certificate it issues.
	Superusers []string `yaml:"superusers,omitempty"`
}

func (c *AuthConfig) validate() []error {
	var errs []error
	seen := map[string]bool{}
	for i, s := range c.Superusers {
		if err := grants.CheckPrincipal(s); err != nil {
			errs = append(errs, fmt.Errorf("auth.superusers[%d]: %w", i, err))
		}
		if seen[s] {
			errs = append(errs, fmt.Errorf("auth.superusers[%d]: %q is listed twice", i, s))
		}
		seen[s] = true
	}
	return errs
}

// grantsName is the store record holding the grant table.
const grantsName = "auth/grants"

// authz is a node's authorization state.
type authz struct {
	superusers map[string]bool
	mu         sync.Mutex // guards table and clock; held while the table is persisted
	table      *grants.Table
	clock      grants.Clock
}

// startAuth loads the grant table from the store.
func (n *Node) startAuth() error {
	n.auth.superusers = map[string]bool{}
	for _, s := range n.cfg.Auth.Superusers {
		n.auth.superusers[s] = true
	}
	n.auth.table = grants.NewTable()
	b, err := n.store.RepairState(grantsName)
	if err != nil {
		return fmt.Errorf("reading the grant table: %w", err)
	}
	if b != nil {
		var es []grants.Entry
		if err := codec.Unmarshal(b, &es); err != nil {
			// Deny by default until a peer's copy arrives (grantsync.go).
			n.log.Error("the grant table in the store is unreadable; starting from an empty one until a peer's copy replaces it", "err", err)
			es = nil
		}
		if _, err := n.auth.table.MergeAll(es); err != nil {
			n.log.Error("grant table: some stored entries are invalid and were dropped", "err", err)
		}
		for _, e := range es {
			n.auth.clock.Observe(e.Stamp)
		}
	}
	if len(n.cfg.Auth.Superusers) == 0 {
		n.log.Warn("auth.superusers is empty: no principal is an administrator by configuration; only grants replicated from other nodes allow anything, and with none every client request is refused (list at least one client certificate name under auth.superusers)")
	}
	n.log.Info("grant table loaded", "entries", n.auth.table.Len(), "superusers", n.cfg.Auth.Superusers)
	return nil
}

// allows reports whether principal holds need on keyspace.
func (n *Node) allows(principal, keyspace string, need grants.Permission) bool {
	if n.auth.superusers[principal] {
		return true
	}
	n.auth.mu.Lock()
	defer n.auth.mu.Unlock()
	return n.auth.table.Allows(principal, keyspace, need)
}

// check is the authorization of one client request: op on keyspace
// ("*" for cluster operations) needing need. It returns a forbidden
// refusal naming what is missing and how to grant it.
func (n *Node) check(from wan.Identity, op, keyspace string, need grants.Permission) *api.ClientError {
	if from.Role == wan.RoleNode {
		return api.Errorf(api.CodeForbidden, "meridian: %q presents a node certificate, which may not send client requests (%s); use a client certificate", from.Name, op)
	}
	if from.Role != wan.RoleClient {
		return api.Errorf(api.CodeForbidden, "meridian: %q presents a %s certificate, which may not send client requests", from.Name, from.Role)
	}
	if n.allows(from.Name, keyspace, need) {
		return nil
	}
	if keyspace == grants.AllKeyspaces {
		return api.Errorf(api.CodeForbidden, "meridian: principal %q may not run %s: it needs admin on every keyspace (meridian grant %s admin '*')", from.Name, op, from.Name)
	}
	what := fmt.Sprintf("%s keyspace %q (%s)", need, keyspace, op)
	if need == grants.Admin {
		what = fmt.Sprintf("run %s on keyspace %q", op, keyspace)
	}
	return api.Errorf(api.CodeForbidden, "meridian: principal %q may not %s: it needs the %s grant (meridian grant %s %s %s)", from.Name, what, need, from.Name, need, keyspace)
}

// authorize checks a request and, when it is refused, answers it and
// records the refusal in the audit log. It reports whether to go on.
func (n *Node) authorize(ctx context.Context, from wan.Identity, req *wan.Envelope, op, keyspace string, need grants.Permission, reply wan.Replier) bool {
	cerr := n.check(from, op, keyspace, need)
	if cerr == nil {
		return true
	}
	n.auditRequest(ctx, from, req, op, keyspace, AuditForbidden, "", cerr.Message)
	sendClientError(reply, cerr)
	return false
}

// auditDone records an administrative operation's outcome.
func (n *Node) auditDone(ctx context.Context, from wan.Identity, req *wan.Envelope, op, keyspace, detail string, cerr *api.ClientError) {
	if cerr != nil {
		n.auditRequest(ctx, from, req, op, keyspace, AuditError, detail, cerr.Message)
		return
	}
	n.auditRequest(ctx, from, req, op, keyspace, AuditOK, detail, "")
}

// parseGrant validates a grant or revoke request.
func (n *Node) parseGrant(r *api.GrantRequest) (grants.Permission, *api.ClientError) {
	p, err := grants.ParsePermission(r.Permission)
	if err != nil {
		return 0, api.Errorf(api.CodeBadRequest, "meridian: %v", err)
	}
	if err := grants.CheckPrincipal(r.Principal); err != nil {
		return 0, api.Errorf(api.CodeBadRequest, "meridian: %v", err)
	}
	if err := grants.CheckKeyspace(r.Keyspace); err != nil {
		return 0, api.Errorf(api.CodeBadRequest, "meridian: %v", err)
	}
	if r.Keyspace != grants.AllKeyspaces {
		if _, cerr := n.keyspace(r.Keyspace); cerr != nil {
			return 0, cerr
		}
	}
	return p, nil
}

// grant applies a grant or revoke (already authorized): it stores the
// fact on this node and pushes it to every member.
func (n *Node) grant(ctx context.Context, r *api.GrantRequest, p grants.Permission) (*api.GrantResponse, *api.ClientError) {
	granted := !r.Revoke
	n.auth.mu.Lock()
	old, had := n.auth.table.Get(r.Principal, r.Keyspace, p)
	var e grants.Entry
	changed := !had || old.Granted != granted
	if changed {
		next := n.auth.table.Clone()
		var err error
		if e, err = grants.NewEntry(r.Principal, r.Keyspace, p, granted, n.auth.clock.Next(n.now(), n.cfg.ID)); err == nil {
			_, err = next.Merge(e)
		}
		if err != nil {
			n.auth.mu.Unlock()
			if errors.Is(err, grants.ErrFull) {
				return nil, api.Errorf(api.CodeTooLarge, "meridian: %v", err)
			}
			return nil, api.Errorf(api.CodeBadRequest, "meridian: %v", err)
		}
		if err := n.persistGrantsLocked(next); err != nil {
			n.auth.mu.Unlock()
			return nil, api.Errorf(api.CodeUnavailable, "meridian: could not store the grant table on %s: %v", n.cfg.ID, err)
		}
		n.auth.table = next
	}
	n.auth.mu.Unlock()

	res := &api.GrantResponse{Node: n.cfg.ID, Changed: changed, Keyspace: r.Keyspace}
	if changed {
		res.Members, res.Reached = n.pushGrants(ctx, []grants.Entry{e})
	}
	var effect []string
	for _, q := range grants.Permissions {
		if n.allows(r.Principal, r.Keyspace, q) {
			effect = append(effect, q.String())
		}
	}
	res.Effect = strings.Join(effect, ", ")
	if res.Effect == "" {
		res.Effect = "nothing"
	}
	switch {
	case n.auth.superusers[r.Principal]:
		res.Warning = fmt.Sprintf("%q is a superuser (auth.superusers in the node configuration): it keeps admin on every keyspace whatever its grants say", r.Principal)
	case r.Revoke && n.allows(r.Principal, r.Keyspace, p):
		res.Warning = fmt.Sprintf("%q still holds %s on %q through another grant (admin implies read and write; a grant on \"*\" covers every keyspace): see meridian grants --principal %s", r.Principal, p, r.Keyspace, r.Principal)
	}
	return res, nil
}

// persistGrantsLocked writes table to the store; n.auth.mu is held.
func (n *Node) persistGrantsLocked(t *grants.Table) error {
	b, err := codec.Marshal(t.Entries())
	if err != nil {
		return err
	}
	return n.store.PutRepairState(grantsName, b)
}

// listGrants answers meridian grants: every grant to the caller, and
// every grant on a keyspace the caller administers (all of them for a
// cluster admin), optionally of one principal only.
func (n *Node) listGrants(from wan.Identity, r *api.GrantsRequest) *api.GrantsResponse {
	clusterAdmin := n.allows(from.Name, grants.AllKeyspaces, grants.Admin)
	visible := func(principal, keyspace string) bool {
		if r.Principal != "" && principal != r.Principal {
			return false
		}
		return clusterAdmin || principal == from.Name ||
			(keyspace != grants.AllKeyspaces && n.allows(from.Name, keyspace, grants.Admin))
	}
	type pk struct{ principal, keyspace string }
	perms := map[pk][]string{}
	n.auth.mu.Lock()
	entries := n.auth.table.Entries()
	n.auth.mu.Unlock()
	for _, e := range entries {
		if e.Granted && visible(e.Principal, e.Keyspace) {
			k := pk{e.Principal, e.Keyspace}
			perms[k] = append(perms[k], e.Permission.String())
		}
	}
	res := &api.GrantsResponse{Node: n.cfg.ID}
	for _, s := range n.cfg.Auth.Superusers {
		if visible(s, grants.AllKeyspaces) {
			res.Grants = append(res.Grants, api.Grant{Principal: s, Keyspace: grants.AllKeyspaces, Permissions: []string{grants.Admin.String()}, Superuser: true})
		}
	}
	for k, ps := range perms {
		res.Grants = append(res.Grants, api.Grant{Principal: k.principal, Keyspace: k.keyspace, Permissions: ps})
	}
	sort.SliceStable(res.Grants, func(i, j int) bool {
		a, b := res.Grants[i], res.Grants[j]
		if a.Principal != b.Principal {
			return a.Principal < b.Principal
		}
		if a.Keyspace != b.Keyspace {
			return a.Keyspace < b.Keyspace
		}
		return a.Superuser && !b.Superuser
	})
	return res
}

// serveGrant answers meridian grant and revoke.
func (n *Node) serveGrant(ctx context.Context, from wan.Identity, req *wan.Envelope, reply wan.Replier) {
	var r api.GrantRequest
	if err := req.Decode(&r); err != nil {
		sendClientError(reply, api.Errorf(api.CodeBadRequest, "meridian: malformed grant request: %v", err))
		return
	}
	op := "grant"
	if r.Revoke {
		op = "revoke"
	}
	detail := fmt.Sprintf("%s %s to %q", op, r.Permission, r.Principal)
	if r.Revoke {
		detail = fmt.Sprintf("%s %s from %q", op, r.Permission, r.Principal)
	}
	// Who may grant is checked before the request's content, so a
	// principal without admin learns nothing about the keyspaces.
	if !n.authorize(ctx, from, req, op, r.Keyspace, grants.Admin, reply) {
		return
	}
	p, cerr := n.parseGrant(&r)
	if cerr != nil {
		n.auditDone(ctx, from, req, op, r.Keyspace, detail, cerr)
		sendClientError(reply, cerr)
		return
	}
	ctx, done := n.startRequest(ctx, req, op, r.Keyspace, "")
	res, cerr := n.grant(ctx, &r, p)
	done(cerr, nil, -1)
	n.auditDone(ctx, from, req, op, r.Keyspace, detail, cerr)
	respond(reply, api.TypeGrantReply, res, cerr)
}

// serveGrants answers meridian grants.
func (n *Node) serveGrants(ctx context.Context, from wan.Identity, req *wan.Envelope, reply wan.Replier) {
	var r api.GrantsRequest
	if err := req.Decode(&r); err != nil {
		sendClientError(reply, api.Errorf(api.CodeBadRequest, "meridian: malformed grants request: %v", err))
		return
	}
	if from.Role != wan.RoleClient {
		cerr := n.check(from, "grants", grants.AllKeyspaces, grants.Admin)
		n.auditRequest(ctx, from, req, "grants", "", AuditForbidden, "", cerr.Message)
		sendClientError(reply, cerr)
		return
	}
	detail := ""
	if r.Principal != "" {
		detail = fmt.Sprintf("of %q", r.Principal)
	}
	n.auditDone(ctx, from, req, "grants", "", detail, nil)
	respond(reply, api.TypeGrantsReply, n.listGrants(from, &r), nil)
}

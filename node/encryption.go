package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/grants"
	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/wan"
)

// EncryptionConfig turns on encryption at rest (docs/security.md).
type EncryptionConfig struct {
	// KeyFile is a YAML key file (active key id and base64 AES-256 keys,
	// mode 0600; `meridian keys generate` writes one). Empty means values
	// are stored unsealed.
	KeyFile string `yaml:"key_file,omitempty"`
}

// loadKeyring reads the configured key file; nil without one.
func (c *EncryptionConfig) loadKeyring() (*store.Keyring, error) {
	if c.KeyFile == "" {
		return nil, nil
	}
	kr, err := store.LoadKeyFile(c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("encryption.key_file: %w", err)
	}
	return kr, nil
}

// ReloadEncryptionKeys re-reads the configured key file and swaps the
// store's keyring: values written from then on are sealed under the file's
// active key, and values sealed under any key still in the file stay
// readable. On error (the file is missing, unreadable by mode, or invalid)
// the keys in use stay as they were. A node configured without a key file
// has nothing to reload and returns nil; turning encryption on or off
// takes a restart.
//
// Remove a key from the file only after `meridian reencrypt` reported
// every node done: values still sealed under a removed key fail to open
// (with an error naming the key id) until it is put back.
func (n *Node) ReloadEncryptionKeys() error {
	if n.cfg.Encryption.KeyFile == "" {
		return nil
	}
	kr, err := n.cfg.Encryption.loadKeyring()
	if err != nil {
		return fmt.Errorf("node: reloading encryption keys: %w", err)
	}
	old := n.store.Keyring()
	n.store.SetKeyring(kr)
	n.log.Info("encryption keys reloaded", "file", n.cfg.Encryption.KeyFile, "active", kr.Active(), "keys", kr.IDs(), "previous_active", old.Active())
	return nil
}

// reencryptFanOut bounds the nodes re-encrypting at once for one request.
const reencryptFanOut = 4

// serveReencrypt answers api.TypeReencrypt (from an operator) and
// typeReencryptNode (from the node an operator asked, for all nodes).
//
// Authorization: api.TypeReencrypt needs admin on every keyspace (it
// rewrites every value of the node) and is audited; typeReencryptNode
// needs a node certificate (the node that checked the operator's request
// passes it on).
func (n *Node) serveReencrypt(ctx context.Context, from wan.Identity, req *wan.Envelope, reply wan.Replier) {
	if req.Type == typeReencryptNode {
		if from.Role != wan.RoleNode {
			n.auditRequest(ctx, from, req, "reencrypt", "", AuditForbidden, "", "node-to-node message from a non-node certificate")
			reply.SendError(api.CodeForbidden, "meridian: node-to-node messages need a node certificate")
			return
		}
		res := n.reencryptLocal(ctx)
		respond(reply, typeReencryptNodeReply, &res, nil)
		return
	}
	var r api.ReencryptRequest
	if err := req.Decode(&r); err != nil {
		sendClientError(reply, api.Errorf(api.CodeBadRequest, "meridian: malformed reencrypt request: %v", err))
		return
	}
	if !n.authorize(ctx, from, req, "reencrypt", grants.AllKeyspaces, grants.Admin, reply) {
		return
	}
	res := &api.ReencryptResponse{}
	defer func() {
		var failed []string
		for _, r := range res.Nodes {
			if r.Error != "" || r.Unreadable > 0 {
				failed = append(failed, r.Node)
			}
		}
		var cerr *api.ClientError
		if len(failed) > 0 {
			cerr = api.Errorf(api.CodeInternal, "not finished on %v", failed)
		}
		n.auditDone(ctx, from, req, "reencrypt", "", fmt.Sprintf("%d nodes", len(res.Nodes)), cerr)
	}()
	if !r.All {
		res.Nodes = []api.ReencryptResult{n.reencryptLocal(ctx)}
		respond(reply, api.TypeReencryptReply, res, nil)
		return
	}
	ids := n.Members()
	res.Nodes = make([]api.ReencryptResult, len(ids))
	var g errgroup.Group
	g.SetLimit(reencryptFanOut)
	for i, id := range ids {
		g.Go(func() error {
			if id == n.cfg.ID {
				res.Nodes[i] = n.reencryptLocal(ctx)
				return nil
			}
			res.Nodes[i] = n.reencryptPeer(ctx, id)
			return nil
		})
	}
	g.Wait()
	sort.Slice(res.Nodes, func(i, j int) bool { return res.Nodes[i].Node < res.Nodes[j].Node })
	respond(reply, api.TypeReencryptReply, res, nil)
}

// reencryptPeer asks node id to re-encrypt its store.
func (n *Node) reencryptPeer(ctx context.Context, id string) api.ReencryptResult {
	var out api.ReencryptResult
	err := n.peers.call(ctx, id, typeReencryptNode, &api.ReencryptRequest{}, func(e *wan.Envelope) error {
		if e.Type != typeReencryptNodeReply {
			return fmt.Errorf("unexpected reply type %d", e.Type)
		}
		return e.Decode(&out)
	})
	if err != nil {
		return api.ReencryptResult{Node: id, Error: err.Error()}
	}
	out.Node = id
	return out
}

// reencryptLocal re-seals this node's values under its active key.
func (n *Node) reencryptLocal(ctx context.Context) api.ReencryptResult {
	res := api.ReencryptResult{Node: n.cfg.ID}
	if !n.reencrypt.running.CompareAndSwap(false, true) {
		res.Error = "a re-encryption is already running on this node"
		return res
	}
	defer n.reencrypt.running.Store(false)
	st, err := n.store.Reencrypt(ctx)
	res.ActiveKey, res.Rewritten, res.Current, res.ByKey, res.Unreadable = st.Active, st.Rewritten, st.Current, st.ByKey, st.Unreadable
	switch {
	case errors.Is(err, store.ErrNoKeyring):
		res.Error = "encryption at rest is not configured on this node (encryption.key_file)"
	case err != nil:
		res.Error = err.Error()
	}
	n.log.Info("re-encryption", "active", st.Active, "rewritten", st.Rewritten, "current", st.Current, "by_key", st.ByKey, "unreadable", st.Unreadable, "err", err)
	return res
}

// reencryption is the re-encryption room: whether meridian reencrypt is
// running on this node (one at a time).
type reencryption struct {
	running atomic.Bool
}

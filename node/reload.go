package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/meridian-kv/meridian/wan"
)

// reloadState is what Reload needs between calls.
type reloadState struct {
	mu         sync.Mutex   // serialises Reload
	configPath string       // Options.ConfigPath: re-read for the tls section
	files      wan.TLSFiles // the TLS files in use
}

// reloadStep is one part of the node Reload re-reads.
type reloadStep struct {
	name string
	run  func() error
}

// reloadSteps lists what Reload re-reads, in order. To make another part
// of the node reloadable, add a step here, e.g.
// {"encryption keys", n.ReloadEncryptionKeys}.
func (n *Node) reloadSteps() []reloadStep {
	return []reloadStep{
		{"certificates", n.reloadCredentials},
		{"encryption keys", n.ReloadEncryptionKeys},
	}
}

// Reload re-reads what a node can change without a restart and applies it:
// today its TLS files (CA bundle, certificate and key, revocation list),
// taken from the tls section of the configuration file (Options.ConfigPath)
// as it is now, or from the files named at start if there is none. Every
// step runs even if an earlier one failed; a step that fails (an unreadable
// or malformed file, a key that does not match its certificate, an expired
// certificate, a certificate for another node) keeps what it had, and its
// error is logged and returned. Other configuration fields are read at start
// only. `meridian node` calls it on SIGHUP and when the files change.
func (n *Node) Reload() error {
	n.reload.mu.Lock()
	defer n.reload.mu.Unlock()
	if n.closed.Load() {
		return errors.New("node: reload: the node is closed")
	}
	var errs []error
	for _, step := range n.reloadSteps() {
		if err := step.run(); err != nil {
			n.log.Error("reload failed; keeping the previous "+step.name, "err", err)
			errs = append(errs, fmt.Errorf("node: reload %s: %w", step.name, err))
		}
	}
	return errors.Join(errs...)
}

// reloadCredentials loads the TLS files and hands them to the transport.
func (n *Node) reloadCredentials() error {
	files := n.reload.files
	if p := n.reload.configPath; p != "" {
		cfg, err := LoadConfig(p)
		if err != nil {
			return err
		}
		if cfg.ID != n.cfg.ID {
			return fmt.Errorf("config %s now names node %q, but this node is %q: an id changes only with a restart", p, cfg.ID, n.cfg.ID)
		}
		files = cfg.TLS
	}
	creds, err := wan.LoadCredentials(files, n.now())
	if err != nil {
		return err
	}
	if id := creds.Identity(); id.Name != n.cfg.ID || id.Role != wan.RoleNode {
		return fmt.Errorf("certificate %s names %s %q, but this node is %q: issue a node certificate for it (meridian cert create-node --id %s)", files.Cert, id.Role, id.Name, n.cfg.ID, n.cfg.ID)
	}
	closed, err := n.tr.SetCredentials(creds)
	if err != nil {
		return err
	}
	n.reload.files = files
	n.log.Info("reloaded certificates", "serial", creds.Identity().Serial, "not_after", creds.Leaf().NotAfter.UTC().Format(time.RFC3339),
		"revoked", len(creds.Revoked()), "connections_closed", closed)
	return nil
}

// ReloadFiles returns the files whose change calls for a Reload: the
// configuration file, if known, the TLS files in use and the encryption
// key file.
func (n *Node) ReloadFiles() []string {
	n.reload.mu.Lock()
	defer n.reload.mu.Unlock()
	var out []string
	for _, f := range []string{n.reload.configPath, n.reload.files.CA, n.reload.files.Cert, n.reload.files.Key, n.reload.files.RevokedFile, n.cfg.Encryption.KeyFile} {
		if f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// fileStamp is what a poll sees of a file.
type fileStamp struct {
	info os.FileInfo // nil if missing or unreadable
}

func stampFiles(files []string) map[string]fileStamp {
	m := make(map[string]fileStamp, len(files))
	for _, f := range files {
		st, err := os.Stat(f) // follows symlinks: a swapped link counts as a change
		if err != nil {
			m[f] = fileStamp{}
			continue
		}
		m[f] = fileStamp{info: st}
	}
	return m
}

func sameStamps(a, b map[string]fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for f, s := range a {
		t, ok := b[f]
		if !ok || (s.info == nil) != (t.info == nil) {
			return false
		}
		// A file replaced by rename is another file even if its time and
		// size look the same (coarse timestamps).
		if s.info != nil && (!os.SameFile(s.info, t.info) || !s.info.ModTime().Equal(t.info.ModTime()) || s.info.Size() != t.info.Size()) {
			return false
		}
	}
	return true
}

// WatchFiles polls ReloadFiles every interval until ctx is done and calls
// Reload once a change has settled: the files differ from those last
// loaded and did not change between two polls, so that a certificate and
// its key replaced one after the other are loaded together. Polling, not
// inotify, so that files replaced by rename or through a swapped symlink
// (as Kubernetes secrets are) are seen on every filesystem. A failed reload
// is logged and retried when the files change again.
func (n *Node) WatchFiles(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	loaded := stampFiles(n.ReloadFiles())
	prev := loaded
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		files := n.ReloadFiles()
		now := stampFiles(files)
		if !sameStamps(now, loaded) && sameStamps(now, prev) {
			n.log.Info("TLS files changed; reloading", "files", files)
			n.Reload() // logs its outcome
			// Stamp what the reload read (it may name other files now).
			now = stampFiles(n.ReloadFiles())
			loaded = now
		}
		prev = now
	}
}

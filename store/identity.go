package store

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// IdentityFile is the file, in the data directory, that holds the
// directory's Identity.
const IdentityFile = "MERIDIAN-IDENTITY"

// ErrDirectoryLost is wrapped by the error of a store whose data directory
// lost its identity file while the store was open: the directory was
// deleted, replaced or unmounted under the running node. Writes acknowledged
// from then on would not survive a restart, so the store serves nothing
// more (it wraps ErrFailed too).
var ErrDirectoryLost = errors.New("store: the data directory lost its identity file while the node ran (deleted, replaced or unmounted)")

// Identity is a data directory's own identity, made once when the directory
// is created and never changed. The actor that mints version dots on this
// node is its incarnation (Identity.Actor), not the node id alone: a node
// that comes back on an empty disk is a new actor, so it can never re-mint
// a dot another replica already holds (Riak's vnode epochs solve the same
// problem). Dots minted by earlier incarnations stay valid: they are just
// another actor's.
type Identity struct {
	// Node is the id of the node that created the directory. A store opened
	// for another node id is refused.
	Node string `json:"node"`
	// Incarnation is random (48 bits, hex), made with the directory.
	Incarnation string `json:"incarnation"`
	// Created is when the directory was created (informational).
	Created time.Time `json:"created"`
}

// Actor is the name of the version-vector actor of this incarnation:
// "node@incarnation".
func (id Identity) Actor() string { return id.Node + "@" + id.Incarnation }

// newIdentity makes the identity of a new data directory of node.
func newIdentity(node string, now time.Time) (Identity, error) {
	var b [6]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return Identity{}, fmt.Errorf("store: making an incarnation: %w", err)
	}
	return Identity{Node: node, Incarnation: hex.EncodeToString(b[:]), Created: now.UTC()}, nil
}

// loadIdentity returns the identity of the data directory dir, creating it
// if the directory has none. fresh reports that the directory held no
// store before (a new node, or one whose disk was replaced or wiped); a
// directory written by a version without identities gets one and is not
// fresh. node, if not empty, must match the directory's owner.
func loadIdentity(fs vfs.FS, dir, node string, now time.Time) (id Identity, fresh bool, err error) {
	path := fs.PathJoin(dir, IdentityFile)
	id, err = readIdentity(fs, path)
	switch {
	case err == nil:
		if node != "" && id.Node != node {
			return Identity{}, false, fmt.Errorf("store: data directory %q belongs to node %q, not %q: point this node at its own data directory", dir, id.Node, node)
		}
		return id, false, nil
	case !errors.Is(err, os.ErrNotExist):
		return Identity{}, false, err
	}
	if node == "" {
		node = "store"
	}
	if err := mkdirAllSynced(fs, dir); err != nil {
		return Identity{}, false, fmt.Errorf("store: create data directory %q: %w", dir, err)
	}
	names, err := fs.List(dir)
	if err != nil {
		return Identity{}, false, fmt.Errorf("store: list data directory %q: %w", dir, err)
	}
	fresh = true
	for _, name := range names {
		if strings.HasPrefix(name, "MANIFEST-") {
			fresh = false // a store from before identities: keep its data
		}
	}
	if id, err = newIdentity(node, now); err != nil {
		return Identity{}, false, err
	}
	if err := writeIdentity(fs, dir, path, id); err != nil {
		return Identity{}, false, err
	}
	return id, fresh, nil
}

// mkdirAllSynced creates dir and any missing parents, and syncs the parent
// of every directory it created, so the new directories survive a power
// cut (Pebble syncs the parent of a directory only when it creates it).
func mkdirAllSynced(fs vfs.FS, dir string) error {
	var created []string
	for d := dir; ; {
		if _, err := fs.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		created = append(created, d)
		parent := fs.PathDir(d)
		if parent == d || parent == "" || parent == "." {
			break
		}
		d = parent
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := len(created) - 1; i >= 0; i-- {
		parent := fs.PathDir(created[i])
		if parent == "" {
			parent = "."
		}
		d, err := fs.OpenDir(parent)
		if err != nil {
			return err
		}
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("sync directory %q: %w", parent, err)
		}
	}
	return nil
}

// readIdentity reads and checks the identity file at path.
func readIdentity(fs vfs.FS, path string) (Identity, error) {
	f, err := fs.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Identity{}, fmt.Errorf("store: %s: %w", path, os.ErrNotExist)
		}
		return Identity{}, fmt.Errorf("store: open %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return Identity{}, fmt.Errorf("store: read %s: %w", path, err)
	}
	var id Identity
	if err := json.Unmarshal(b, &id); err != nil || id.Node == "" || id.Incarnation == "" {
		return Identity{}, fmt.Errorf("store: %s is not a valid identity file (restore it, or move the directory aside to start this node as a new incarnation)", path)
	}
	return id, nil
}

// writeIdentity writes id to path atomically and durably: a synced
// temporary file renamed into place, then the directory synced.
func writeIdentity(fs vfs.FS, dir, path string, id Identity) (err error) {
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	tmp := path + ".tmp"
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("store: create %s: %w", tmp, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("store: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("store: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", tmp, err)
	}
	if err := fs.Rename(tmp, path); err != nil {
		return fmt.Errorf("store: rename %s: %w", tmp, err)
	}
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("store: open directory %q: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: sync directory %q: %w", dir, err)
	}
	return nil
}

// Identity returns the data directory's identity.
func (s *Store) Identity() Identity { return s.id }

// Fresh reports whether the data directory held no store when it was
// opened: a new node, or a node whose disk was replaced or wiped.
func (s *Store) Fresh() bool { return s.fresh }

// CheckDirectory verifies that the data directory still holds this store's
// identity file with the same incarnation. If it does not, the store fails
// (every later call returns an error wrapping ErrFailed and
// ErrDirectoryLost) and the error is returned. The node calls it
// periodically; every write also checks, after its commit, that the file is
// still there, so a write that landed in a deleted directory is never
// acknowledged.
func (s *Store) CheckDirectory() error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	id, err := readIdentity(s.fs, s.fs.PathJoin(s.dir, IdentityFile))
	if err == nil && (id.Node != s.id.Node || id.Incarnation != s.id.Incarnation) {
		err = fmt.Errorf("incarnation %s replaced by %s", s.id.Incarnation, id.Incarnation)
	}
	if err != nil {
		return s.lose(err)
	}
	return nil
}

// stillHome is the cheap check every write makes after its commit: the
// identity file is still where it was.
func (s *Store) stillHome() error {
	if _, err := s.fs.Stat(s.fs.PathJoin(s.dir, IdentityFile)); err != nil {
		return s.lose(err)
	}
	return nil
}

// lose fails the store because its directory is gone.
func (s *Store) lose(cause error) error {
	err := fmt.Errorf("%w: %w: %s: %v", ErrFailed, ErrDirectoryLost, s.dir, cause)
	s.fail(err)
	return *s.failed.Load()
}

// Err returns the error that failed the store, or nil while it is healthy.
func (s *Store) Err() error {
	if errp := s.failed.Load(); errp != nil {
		return *errp
	}
	return nil
}

package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/version"
)

func TestIdentityIsMadeOnceWithTheDirectory(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("data", &Options{FS: fs, NodeID: "east-1"})
	if err != nil {
		t.Fatal(err)
	}
	id := s.Identity()
	if !s.Fresh() || id.Node != "east-1" || len(id.Incarnation) != 12 || id.Actor() != "east-1@"+id.Incarnation {
		t.Fatalf("new directory: fresh=%v identity %+v", s.Fresh(), id)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open("data", &Options{FS: fs, NodeID: "east-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Fresh() || s.Identity().Incarnation != id.Incarnation {
		t.Fatalf("reopened: fresh=%v incarnation %s, want not fresh and %s", s.Fresh(), s.Identity().Incarnation, id.Incarnation)
	}
}

func TestWipedDirectoryIsANewIncarnation(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, &Options{NodeID: "east-1"})
	if err != nil {
		t.Fatal(err)
	}
	first := s.Identity().Incarnation
	s.Close()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, &Options{NodeID: "east-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Fresh() || s.Identity().Incarnation == first {
		t.Fatalf("wiped directory: fresh=%v incarnation %s (was %s): want a fresh, new incarnation", s.Fresh(), s.Identity().Incarnation, first)
	}
}

func TestDirectoryOfAnotherNodeIsRefused(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("data", &Options{FS: fs, NodeID: "east-1"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open("data", &Options{FS: fs, NodeID: "east-2"})
	if err == nil || !strings.Contains(err.Error(), `belongs to node "east-1", not "east-2"`) {
		t.Fatalf("opening east-1's directory as east-2: %v", err)
	}
}

// A directory written before identities existed keeps its data and gets
// an identity; it is not fresh.
func TestDirectoryWithoutIdentityKeepsItsData(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("data", &Options{FS: fs, NodeID: "east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Update("ks", []byte("k"), func(cur *version.Object) (*version.Object, error) {
		return cur.Update(nil, "east-1", version.Write{Value: []byte("v")}), nil
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := fs.Remove(fs.PathJoin("data", IdentityFile)); err != nil {
		t.Fatal(err)
	}
	s, err = Open("data", &Options{FS: fs, NodeID: "east-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	obj, err := s.Get("ks", []byte("k"))
	if err != nil || len(obj.Values()) != 1 || s.Fresh() {
		t.Fatalf("after upgrade: %v, %v values, fresh=%v", err, obj, s.Fresh())
	}
}

// A store whose directory is deleted under it acknowledges no write from
// then on, and reports why.
func TestDeletedDirectoryFailsTheStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir, &Options{NodeID: "east-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	write := func(v string) error {
		_, _, err := s.Update("ks", []byte("k"), func(cur *version.Object) (*version.Object, error) {
			return cur.Update(nil, "a", version.Write{Value: []byte(v)}), nil
		})
		return err
	}
	if err := write("before"); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckDirectory(); err != nil {
		t.Fatalf("healthy directory: %v", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	err = write("after")
	if !errors.Is(err, ErrFailed) || !errors.Is(err, ErrDirectoryLost) {
		t.Fatalf("write into a deleted directory: %v, want ErrFailed and ErrDirectoryLost", err)
	}
	if err := s.CheckDirectory(); !errors.Is(err, ErrDirectoryLost) {
		t.Fatalf("CheckDirectory: %v", err)
	}
	if _, err := s.Get("ks", []byte("k")); !errors.Is(err, ErrFailed) {
		t.Fatalf("read after the directory was lost: %v", err)
	}
	if s.Err() == nil {
		t.Fatal("Err() is nil on a failed store")
	}
}

// The periodic check also notices a directory replaced by another one
// (another incarnation's identity file).
func TestReplacedDirectoryFailsTheCheck(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("data", &Options{FS: fs, NodeID: "east-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, _ := newIdentity("east-1", s.now())
	if err := writeIdentity(fs, "data", fs.PathJoin("data", IdentityFile), other); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckDirectory(); !errors.Is(err, ErrDirectoryLost) {
		t.Fatalf("CheckDirectory after the identity changed: %v", err)
	}
}

// A new data directory, its identity and what Pebble wrote survive a power
// cut right after Open: the directory entries were synced.
func TestNewDirectorySurvivesACrash(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s, err := Open("/a/data", &Options{FS: fs, NodeID: "east-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Update("ks", []byte("k"), func(cur *version.Object) (*version.Object, error) {
		return cur.Update(nil, "a", version.Write{Value: []byte("v")}), nil
	}); err != nil {
		t.Fatal(err)
	}
	clone := fs.CrashClone(vfs.CrashCloneCfg{})
	s2, err := Open("/a/data", &Options{FS: clone, NodeID: "east-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	obj, err := s2.Get("ks", []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	if s2.Fresh() || s2.Identity().Incarnation != s.Identity().Incarnation || len(obj.Values()) != 1 {
		t.Fatalf("after a crash: fresh=%v incarnation %s (was %s), %d values", s2.Fresh(), s2.Identity().Incarnation, s.Identity().Incarnation, len(obj.Values()))
	}
}

package store

import (
	"bytes"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/version"
)

func TestRepairStateSurvivesReopen(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("db", &Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.RepairState("pair/east/west"); err != nil || v != nil {
		t.Fatalf("missing state: %q, %v", v, err)
	}
	if err := s.PutRepairState("pair/east/west", []byte("checkpoint-1")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRepairState("", []byte("x")); err == nil {
		t.Error("empty name accepted")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open("db", &Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.RepairState("pair/east/west"); err != nil || !bytes.Equal(v, []byte("checkpoint-1")) {
		t.Fatalf("after reopen: %q, %v", v, err)
	}
	// Repair state never shows up as data or hints.
	if err := s.Scan("pair", 0, 0, func(uint64, []byte, *version.Object) error { t.Error("scan saw repair state"); return nil }); err != nil {
		t.Fatal(err)
	}
}

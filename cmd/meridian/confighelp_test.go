package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestNodeConfigFlag: for meridian node, --config names the node's
// configuration (its help says so, and the value reaches the command),
// while the other commands keep the client configuration's flag.
func TestNodeConfigFlag(t *testing.T) {
	out, err := certCLI("node", "--help")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "node configuration file") || strings.Contains(out, "client configuration file") {
		t.Errorf("meridian node --help describes --config wrongly:\n%s", out)
	}
	out, err = certCLI("put", "--help")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "client configuration file") {
		t.Errorf("meridian put --help lost the client configuration's --config:\n%s", out)
	}
	if _, err := certCLI("node"); err == nil || !strings.Contains(err.Error(), "--config is required") {
		t.Errorf("meridian node without --config: %v, want --config is required", err)
	}
	missing := filepath.Join(t.TempDir(), "absent.yaml")
	if _, err := certCLI("node", "--config", missing); err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Errorf("meridian node --config %s: %v, want an error naming the file", missing, err)
	}
}

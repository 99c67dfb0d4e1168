package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/devcluster"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/wan"
)

// certCLI runs one meridian command in this process and returns its stdout.
func certCLI(args ...string) (string, error) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func certList(t *testing.T, dir string) map[string]certJSON {
	t.Helper()
	out, err := certCLI("cert", "list", "--certs-dir", dir, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var list []certJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("cert list --json: %v\n%s", err, out)
	}
	m := map[string]certJSON{}
	for _, c := range list {
		m[filepath.Base(c.File)] = c
	}
	return m
}

func TestCertCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	// No CA yet: signing says how to make one.
	if _, err := certCLI("cert", "create-node", "--certs-dir", dir, "--id", "east-1", "--dc", "east"); err == nil || !strings.Contains(err.Error(), "cert create-ca") {
		t.Fatalf("create-node without a CA: %v", err)
	} else {
		t.Log(err)
	}
	if _, err := certCLI("cert", "create-ca", "--certs-dir", dir); err != nil {
		t.Fatal(err)
	}
	if _, err := certCLI("cert", "create-node", "--certs-dir", dir, "--id", "east-1", "--dc", "east", "--host", "127.0.0.1", "--host", "east-1.internal", "--lifetime", "90d"); err != nil {
		t.Fatal(err)
	}
	if _, err := certCLI("cert", "create-client", "--certs-dir", dir, "--name", "alice"); err != nil {
		t.Fatal(err)
	}
	// Existing files are not replaced without --overwrite, and are left as
	// they were.
	before := certList(t, dir)
	for _, args := range [][]string{
		{"cert", "create-ca", "--certs-dir", dir},
		{"cert", "create-node", "--certs-dir", dir, "--id", "east-1", "--dc", "east"},
		{"cert", "create-client", "--certs-dir", dir, "--name", "alice"},
	} {
		if _, err := certCLI(args...); err == nil || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "--overwrite") {
			t.Fatalf("%v over existing files: %v", args, err)
		}
	}
	if after := certList(t, dir); after["alice.pem"].Serial != before["alice.pem"].Serial || after["ca.pem"].Serial != before["ca.pem"].Serial {
		t.Fatal("a refused command replaced a file")
	}
	if _, err := certCLI("cert", "create-client", "--certs-dir", dir, "--name", "alice", "--overwrite"); err != nil {
		t.Fatal(err)
	}

	list := certList(t, dir)
	if len(list) != 3 {
		t.Fatalf("cert list: %+v", list)
	}
	ca, n, c := list["ca.pem"], list["east-1.pem"], list["alice.pem"]
	if ca.Role != "ca" || n.Role != "node" || n.Principal != "east-1" || n.DC != "east" || c.Role != "client" || c.Principal != "alice" {
		t.Fatalf("cert list: %+v", list)
	}
	if c.Serial == before["alice.pem"].Serial {
		t.Fatal("--overwrite did not issue a new certificate")
	}
	if d := n.NotAfter.Sub(n.NotBefore); d < 89*24*time.Hour || d > 92*24*time.Hour {
		t.Errorf("--lifetime 90d gave %v", d)
	}
	if d := ca.NotAfter.Sub(ca.NotBefore); d < 9*365*24*time.Hour {
		t.Errorf("the CA lasts %v, want 10y", d)
	}
	for _, in := range list {
		if in.Status != "valid" {
			t.Errorf("%s: status %s", in.File, in.Status)
		}
	}
	// Keys are private; the files load as credentials whose identity and
	// serial cert list showed.
	for _, name := range []string{"ca", "east-1", "alice"} {
		st, err := os.Stat(filepath.Join(dir, name+"-key.pem"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s-key.pem: %v, mode %v", name, err, st.Mode())
		}
	}
	for name, want := range map[string]wan.Identity{
		"east-1": {Name: "east-1", Role: wan.RoleNode, Serial: n.Serial},
		"alice":  {Name: "alice", Role: wan.RoleClient, Serial: c.Serial},
	} {
		creds, err := wan.LoadCredentials(wan.TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: node.CertFile(dir, name), Key: node.KeyFile(dir, name)}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if creds.Identity() != want {
			t.Errorf("%s: identity %+v, want %+v", name, creds.Identity(), want)
		}
	}
	// The table names the serial an operator copies into tls.revoked.
	out, err := certCLI("cert", "list", "--certs-dir", dir)
	if err != nil || !strings.Contains(out, "SERIAL") || !strings.Contains(out, c.Serial) {
		t.Fatalf("cert list: %v\n%s", err, out)
	}
	t.Logf("cert list:\n%s", out)
}

// TestCertReproducesDev: everything dev --config-only writes for TLS can be
// made by meridian cert instead, with the same file names, and loads.
func TestCertReproducesDev(t *testing.T) {
	dir := t.TempDir()
	if _, err := certCLI("dev", "--config-only", "--dir", dir, "--base-port", portBlock(), "--regions", "east,west", "--nodes-per-region", "1"); err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(dir, "certs")
	devFiles, _ := filepath.Glob(filepath.Join(certs, "*.pem"))
	if _, err := certCLI("cert", "create-ca", "--certs-dir", certs, "--overwrite"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"east-1", "west-1"} {
		dc := strings.TrimSuffix(id, "-1")
		if _, err := certCLI("cert", "create-node", "--certs-dir", certs, "--id", id, "--dc", dc, "--host", "127.0.0.1", "--host", "localhost", "--overwrite"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := certCLI("cert", "create-client", "--certs-dir", certs, "--name", devcluster.Principal, "--overwrite"); err != nil {
		t.Fatal(err)
	}
	certFiles, _ := filepath.Glob(filepath.Join(certs, "*.pem"))
	if strings.Join(certFiles, " ") != strings.Join(devFiles, " ") {
		t.Fatalf("meridian cert wrote %v, dev wrote %v", certFiles, devFiles)
	}
	for _, id := range []string{"east-1", "west-1"} {
		cfg, err := node.LoadConfig(filepath.Join(dir, "nodes", id+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		creds, err := cfg.TLS.Load(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if id := creds.Identity(); id.Name != cfg.ID || id.Role != wan.RoleNode || wan.NodeDC(creds.Leaf()) != cfg.DC {
			t.Errorf("%s: identity %+v, dc %q", cfg.ID, id, wan.NodeDC(creds.Leaf()))
		}
	}
}

func TestParseLifetime(t *testing.T) {
	for in, want := range map[string]time.Duration{"10y": 10 * 365 * 24 * time.Hour, "90d": 90 * 24 * time.Hour, "720h": 720 * time.Hour, "1y": 365 * 24 * time.Hour} {
		if got, err := parseLifetime(in); err != nil || got != want {
			t.Errorf("parseLifetime(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0d", "-1y", "ten years", "5", "1.5y"} {
		if _, err := parseLifetime(in); err == nil {
			t.Errorf("parseLifetime(%q) accepted", in)
		}
	}
}

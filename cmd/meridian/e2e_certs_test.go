package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"go.yaml.in/yaml/v3"

	"github.com/meridian-kv/meridian/devcluster"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/wan"
)

// TestProcessesCertRotationAndRevocation runs two nodes on certificates
// made only by meridian cert; revokes one client's serial in every node's
// revocation file (east-1 reloads on SIGHUP, west-1 on its file watch), after
// which that client is refused with an error naming its serial while
// another keeps working; then replaces each node's certificate on disk and
// checks that a new handshake sees the new serial, without a restart.
func TestProcessesCertRotationAndRevocation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes; skipped in -short")
	}
	pc := newProcCluster(t, "--regions", "east,west", "--nodes-per-region", "1", "--wan-latency", "5ms")
	certs := filepath.Join(pc.dir, "certs")
	ids := []string{"east-1", "west-1"}
	dcs := map[string]string{"east-1": "east", "west-1": "west"}

	// Every certificate from meridian cert, none from dev.
	pc.run("cert", "create-ca", "--certs-dir", certs, "--overwrite")
	for _, id := range ids {
		pc.run("cert", "create-node", "--certs-dir", certs, "--id", id, "--dc", dcs[id], "--host", "127.0.0.1", "--overwrite")
	}
	pc.run("cert", "create-client", "--certs-dir", certs, "--name", devcluster.Principal, "--overwrite") // the superuser client.yaml uses
	pc.run("cert", "create-client", "--certs-dir", certs, "--name", "bob")
	bob := filepath.Join(pc.dir, "bob.yaml")
	b, err := os.ReadFile(filepath.Join(pc.dir, "client.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bob, []byte(strings.NewReplacer("/"+devcluster.Principal+".pem", "/bob.pem", "/"+devcluster.Principal+"-key.pem", "/bob-key.pem").Replace(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
	revoked := filepath.Join(certs, "revoked.txt")
	if err := os.WriteFile(revoked, []byte("# revoked client certificates\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addrs := map[string]string{}
	for _, id := range ids {
		file := filepath.Join(pc.dir, "nodes", id+".yaml")
		cfg, err := node.LoadConfig(file)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS.RevokedFile = revoked
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, out, 0o644); err != nil {
			t.Fatal(err)
		}
		addrs[id] = cfg.Listen
	}
	// east-1 reloads on SIGHUP only; west-1 also watches its files.
	pc.startWith("east-1", "--watch-interval", "0")
	pc.startWith("west-1", "--watch-interval", "100ms")
	pc.waitAllSeeAll(ids)

	pc.run("put", "k", "v1")
	pc.run("grant", "bob", "admin", "*") // bob reads, writes and asks status
	if out, err := pc.try("--config", bob, "get", "k"); err != nil || !strings.Contains(out, "v1") {
		t.Fatalf("bob's get: %q, %v", out, err)
	}

	// Revoke the first client by the serial cert list shows.
	var list []certJSON
	if err := json.Unmarshal([]byte(pc.run("cert", "list", "--certs-dir", certs, "--json")), &list); err != nil {
		t.Fatal(err)
	}
	serial := ""
	for _, c := range list {
		if c.Role == "client" && c.Principal == devcluster.Principal {
			serial = c.Serial
		}
	}
	if err := os.WriteFile(revoked, []byte("# revoked client certificates\n"+strings.ToUpper(serial)+" # lost laptop\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pc.procs["east-1"].Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() error {
		_, err := pc.try("put", "k", "v2")
		if err == nil {
			return fmt.Errorf("the revoked client can still write")
		}
		if !strings.Contains(err.Error(), serial) || !strings.Contains(err.Error(), "revocation list") {
			return fmt.Errorf("the revoked client's error does not name its serial %s and the revocation list: %w", serial, err)
		}
		t.Logf("revoked client: %v", err)
		return nil
	})
	if out, err := pc.try("--config", bob, "put", "k", "v3"); err != nil {
		t.Fatalf("bob after the revocation: %q, %v", out, err)
	}

	// Rotate both node certificates on disk; a new handshake sees them.
	for _, id := range ids {
		before := servedSerial(t, addrs[id], certs)
		pc.run("cert", "create-node", "--certs-dir", certs, "--id", id, "--dc", dcs[id], "--host", "127.0.0.1", "--overwrite")
		creds, err := wan.LoadCredentials(wan.TLSFiles{CA: filepath.Join(certs, "ca.pem"), Cert: node.CertFile(certs, id), Key: node.KeyFile(certs, id)}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		want := creds.Identity().Serial
		if id == "east-1" {
			if err := pc.procs[id].Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 20*time.Second, func() error {
			if got := servedSerial(t, addrs[id], certs); got != want {
				return fmt.Errorf("%s serves serial %s (before: %s), want the new %s", id, got, before, want)
			}
			return nil
		})
		t.Logf("%s rotated without a restart: serial %s -> %s", id, before, want)
	}
	// The nodes still talk to each other on the new certificates.
	for _, id := range ids {
		waitFor(t, 20*time.Second, func() error {
			out, err := pc.try("--config", bob, "status", "--json", "--node", id)
			if err != nil {
				return err
			}
			var st statusJSON
			if err := json.Unmarshal([]byte(out), &st); err != nil || !allUp(len(ids))(st) {
				return fmt.Errorf("%s sees %s (%v)", id, out, err)
			}
			return nil
		})
	}
	if out, err := pc.try("--config", bob, "get", "k"); err != nil || !strings.Contains(out, "v3") {
		t.Fatalf("bob after the rotation: %q, %v", out, err)
	}
	// Every reload read a consistent set of files (the watch waits for a
	// change to settle), and each node reloaded twice.
	for _, id := range ids {
		logs, err := os.ReadFile(filepath.Join(pc.dir, id+".log"))
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(logs), "reloaded certificates"); n != 2 || strings.Contains(string(logs), "reload failed") {
			t.Errorf("%s: %d successful reloads, want 2; log:\n%s", id, n, logs)
		}
	}
}

// startWith starts node id with extra flags.
func (pc *procCluster) startWith(id string, extra ...string) {
	pc.t.Helper()
	logf, err := os.OpenFile(filepath.Join(pc.dir, id+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		pc.t.Fatal(err)
	}
	cmd := exec.Command(pc.bin, append([]string{"node", "--config", filepath.Join(pc.dir, "nodes", id+".yaml")}, extra...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		pc.t.Fatal(err)
	}
	pc.procs[id] = cmd
}

// servedSerial makes one handshake with the node at addr, as client bob
// of certs, and returns the serial of the certificate the node presents.
func servedSerial(t *testing.T, addr, certs string) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(node.CertFile(certs, "bob"), node.KeyFile(certs, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, addr, &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true, // only the presented serial is read
		NextProtos:         []string{wan.ALPNClient},
	}, nil)
	if err != nil {
		t.Fatalf("handshake with %s: %v", addr, err)
	}
	defer conn.CloseWithError(0, "done")
	return wan.FormatSerial(conn.ConnectionState().TLS.PeerCertificates[0].SerialNumber)
}

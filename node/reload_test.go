package node_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.yaml.in/yaml/v3"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/devcluster"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/wan"
)

// TestReloadCertificatesAndRevocation drives Node.Reload on one node whose
// configuration and TLS files are on disk: a bad key or another node's
// certificate is refused and the old credentials keep serving; a fresh
// certificate is taken; a serial added to tls.revoked in the configuration
// file cuts off that client, open connection included, and no other.
func TestReloadCertificatesAndRevocation(t *testing.T) {
	dir := t.TempDir()
	dev, err := devcluster.Write(devcluster.Options{Dir: dir, Regions: []string{"east"}, NodesPerRegion: 1})
	if err != nil {
		t.Fatal(err)
	}
	file := dev.NodeFiles[0]
	cfg, err := node.LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(*cfg, node.Options{FS: vfs.NewMem(), Logger: quietLogger, ConfigPath: file})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	certs := filepath.Join(dir, "certs")
	ca, err := node.LoadCA(certs, "")
	if err != nil {
		t.Fatal(err)
	}
	bobTLS, err := node.WriteClientCert(ca, certs, "bob", time.Now(), time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	dial := func(tls wan.TLSFiles) *client.Client {
		c, err := client.Dial(context.Background(), &client.Config{DC: "east", TLS: tls, Timeout: 5 * time.Second,
			Nodes: []client.Node{{ID: cfg.ID, DC: cfg.DC, Addr: cfg.Listen}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	put := func(c *client.Client) error {
		_, err := c.Put(ctx(t), []byte("k"), []byte("v"), nil)
		return err
	}
	alice, bob := dial(dev.ClientTLS), dial(bobTLS)
	// alice is the dev cluster's superuser; bob needs a grant to write.
	if _, err := alice.Grant(ctx(t), "bob", "write", "default"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{alice, bob} {
		if err := put(c); err != nil {
			t.Fatal(err)
		}
	}
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// A key that is not the certificate's: refused, old credentials kept.
	copyFile(bobTLS.Key, cfg.TLS.Key)
	if err := n.Reload(); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("reload with a mismatched key: %v", err)
	} else {
		t.Logf("refused: %v", err)
	}
	if err := put(dial(dev.ClientTLS)); err != nil {
		t.Fatalf("a new connection after the failed reload: %v", err)
	}
	// Another node's certificate: refused.
	other, err := node.WriteNodeCert(ca, certs, "east-9", "east", nil, time.Now(), time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	copyFile(other.Cert, cfg.TLS.Cert)
	copyFile(other.Key, cfg.TLS.Key)
	if err := n.Reload(); err == nil || !strings.Contains(err.Error(), `"east-9"`) {
		t.Fatalf("reload with another node's certificate: %v", err)
	} else {
		t.Logf("refused: %v", err)
	}
	// A fresh certificate for this node: taken.
	if _, err := node.WriteNodeCert(ca, certs, cfg.ID, cfg.DC, []string{"127.0.0.1"}, time.Now(), time.Hour, true); err != nil {
		t.Fatal(err)
	}
	if err := n.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := put(dial(dev.ClientTLS)); err != nil {
		t.Fatal(err)
	}

	// Revoke the first client in the configuration file.
	aliceCreds, err := wan.LoadCredentials(dev.ClientTLS, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	serial := aliceCreds.Identity().Serial
	cfg.TLS.Revoked = []string{strings.ToUpper(serial)}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Reload(); err != nil {
		t.Fatal(err)
	}
	// Its open connection is closed; it cannot connect again.
	err = put(alice)
	if err == nil || !strings.Contains(err.Error(), serial) {
		t.Fatalf("revoked client's put: %v, want a refusal naming serial %s", err, serial)
	}
	t.Logf("revoked client: %v", err)
	if err := put(dial(dev.ClientTLS)); err == nil {
		t.Fatal("a revoked client connected again")
	}
	if err := put(bob); err != nil {
		t.Fatalf("another client after the revocation: %v", err)
	}
}

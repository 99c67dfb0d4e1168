package node_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// systemPython is Debian's interpreter, for which python3-cbor2 is
// packaged (not whatever python3 is first on PATH).
const systemPython = "/usr/bin/python3"

// TestPythonClientOverTheGateway runs clients/python/test_meridian.py,
// a client written from docs/protocol.cddl alone: it decodes the golden
// vectors, then puts, reads siblings, resolves them with the context,
// deletes and reads refusals through two nodes' gateways with mutual TLS.
func TestPythonClientOverTheGateway(t *testing.T) {
	if _, err := os.Stat(systemPython); err != nil {
		t.Skipf("%s is missing (%v): install python3 and python3-cbor2 to run the Python client", systemPython, err)
	}
	if out, err := exec.Command(systemPython, "-c", "import cbor2").CombinedOutput(); err != nil {
		t.Skipf("%s has no cbor2 (%v: %s): apt-get install python3-cbor2 to run the Python client", systemPython, err, out)
	}
	tc, _ := gatewayCluster(t)
	dir, err := filepath.Abs(filepath.Join("..", "clients", "python"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tls := tc.dev.ClientTLS
	cmd := exec.CommandContext(ctx, systemPython, "test_meridian.py",
		"--golden", filepath.Join("..", "..", "api", "testdata", "golden"),
		"--url", "https://"+tc.nodes["east-1"].HTTPAddr(), "--url2", "https://"+tc.nodes["west-1"].HTTPAddr(),
		"--ca", tls.CA, "--cert", tls.Cert, "--key", tls.Key)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("the Python client failed: %v", err)
	}
}

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/wan"
)

// clientConfigFor writes a client configuration like the cluster's
// client.yaml for a new principal, with a client certificate issued by
// the dev cluster's CA, and returns its path.
func (pc *procCluster) clientConfigFor(principal string) string {
	pc.t.Helper()
	certs := filepath.Join(pc.dir, "certs")
	caPEM, err := os.ReadFile(filepath.Join(certs, "ca.pem"))
	if err != nil {
		pc.t.Fatal(err)
	}
	caKey, err := os.ReadFile(filepath.Join(certs, "ca-key.pem"))
	if err != nil {
		pc.t.Fatal(err)
	}
	ca, err := wan.LoadCA(caPEM, caKey)
	if err != nil {
		pc.t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(principal, wan.RoleClient, nil, time.Now(), time.Hour)
	if err != nil {
		pc.t.Fatal(err)
	}
	cfg, err := client.LoadConfig(filepath.Join(pc.dir, "client.yaml"))
	if err != nil {
		pc.t.Fatal(err)
	}
	cfg.TLS.Cert = filepath.Join(certs, principal+".pem")
	cfg.TLS.Key = filepath.Join(certs, principal+"-key.pem")
	if err := os.WriteFile(cfg.TLS.Cert, certPEM, 0o644); err != nil {
		pc.t.Fatal(err)
	}
	if err := os.WriteFile(cfg.TLS.Key, keyPEM, 0o600); err != nil {
		pc.t.Fatal(err)
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		pc.t.Fatal(err)
	}
	path := filepath.Join(pc.dir, principal+".yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		pc.t.Fatal(err)
	}
	return path
}

// runAs runs one CLI command with the client configuration cfg; it returns
// stdout, stderr and the exit code.
func (pc *procCluster) runAs(cfg string, args ...string) (string, string, int) {
	pc.t.Helper()
	cmd := exec.Command(pc.bin, append([]string{"--config", cfg}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	pc.t.Fatalf("meridian %s: %v", strings.Join(args, " "), err)
	return "", "", -1
}

// The grants of issue 9 on real processes, one region per node: a
// principal without a grant is refused; read cannot write; only admin can
// inspect or repair; a grant made at one region's node holds at the
// other's within seconds, and so does a revoke; the refusals are in the
// audit log as JSON lines naming the principal.
func TestProcessesGrants(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two node processes; skipped in -short")
	}
	pc := newProcCluster(t, "--regions", "east,west", "--nodes-per-region", "1", "--wan-latency", "5ms")
	pc.startAll([]string{"east-1", "west-1"})
	alice := pc.clientConfigFor("alice")
	pc.run("put", "k", "v")

	// forbidden asserts that alice's command is refused with exit status 1
	// and a message naming what is missing.
	forbidden := func(what string, mention string, args ...string) {
		t.Helper()
		_, stderr, code := pc.runAs(alice, args...)
		if code != 1 || !strings.Contains(stderr, mention) {
			t.Fatalf("%s: exit %d, stderr %q; want exit 1 saying %q", what, code, stderr, mention)
		}
	}
	// eventually polls alice's command until ok says its outcome is the
	// one wanted.
	eventually := func(what string, ok func(stdout, stderr string, code int) bool, args ...string) time.Duration {
		t.Helper()
		start := time.Now()
		var stdout, stderr string
		var code int
		waitFor(t, 15*time.Second, func() error {
			stdout, stderr, code = pc.runAs(alice, args...)
			if ok(stdout, stderr, code) {
				return nil
			}
			return fmt.Errorf("%s: exit %d, stdout %q, stderr %q", what, code, stdout, stderr)
		})
		return time.Since(start)
	}
	succeeds := func(_, _ string, code int) bool { return code == 0 }
	refused := func(_, stderr string, code int) bool { return code == 1 && strings.Contains(stderr, "may not") }

	forbidden("get without a grant", `principal "alice" may not read keyspace "default" (get): it needs the read grant (meridian grant alice read default)`,
		"get", "k", "--node", "west-1")

	pc.run("--node", "east-1", "grant", "alice", "read", "default")
	took := eventually("get at west-1 after a read grant at east-1", succeeds, "get", "k", "--node", "west-1")
	t.Logf("a grant made at east-1 held at west-1 after %v", took.Round(time.Millisecond))

	forbidden("put with read", `may not write keyspace "default" (put): it needs the write grant`, "put", "k", "x", "--node", "west-1")
	forbidden("inspect with read", `may not run inspect on keyspace "default": it needs the admin grant`, "inspect", "k", "--node", "west-1")
	forbidden("repair with read", `may not run repair on keyspace "default"`, "repair", "--now", "--node", "west-1")
	forbidden("status with read", `may not run status: it needs admin on every keyspace`, "status", "--node", "west-1")
	forbidden("grant with read", `may not run grant on keyspace "default"`, "grant", "alice", "write", "default", "--node", "west-1")

	pc.run("--node", "west-1", "grant", "alice", "admin", "default")
	eventually("inspect at east-1 after an admin grant at west-1", succeeds, "inspect", "k", "--node", "east-1")
	if out, stderr, code := pc.runAs(alice, "repair", "--now", "--json", "--node", "east-1"); code != 0 || !strings.Contains(out, `"done": true`) {
		t.Fatalf("repair with admin: exit %d, %s %s", code, out, stderr)
	}
	if _, stderr, code := pc.runAs(alice, "put", "k", "x", "--node", "east-1"); code != 0 {
		t.Fatalf("put with admin (admin implies write): exit %d, %s", code, stderr)
	}

	pc.run("--node", "east-1", "revoke", "alice", "admin", "default")
	took = eventually("inspect at west-1 after the revoke at east-1", refused, "inspect", "k", "--node", "west-1")
	t.Logf("a revoke made at east-1 held at west-1 after %v", took.Round(time.Millisecond))
	if _, stderr, code := pc.runAs(alice, "get", "k", "--node", "west-1"); code != 0 {
		t.Fatalf("get after revoking admin (read stays): exit %d, %s", code, stderr)
	}

	var list struct {
		Grants []struct {
			Principal   string   `json:"principal"`
			Keyspace    string   `json:"keyspace"`
			Permissions []string `json:"permissions"`
			Superuser   bool     `json:"superuser"`
		} `json:"grants"`
	}
	if err := json.Unmarshal([]byte(pc.run("--node", "west-1", "grants", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(list.Grants)
	if want := "[{admin * [admin] true} {alice default [read] false}]"; got != want {
		t.Fatalf("grants at west-1: %s, want %s", got, want)
	}

	// west-1's audit log has alice's refusals as JSON lines.
	audit := filepath.Join(pc.nodeConfig("west-1").DataDir, "audit.log")
	f, err := os.Open(audit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev node.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if ev.Principal == "alice" && ev.Role == "client" && ev.Remote != "" {
			seen[ev.Operation+" "+ev.Outcome] = true
		}
	}
	for _, want := range []string{"get forbidden", "put forbidden", "inspect forbidden", "repair forbidden", "status forbidden", "grant forbidden", "inspect forbidden"} {
		if !seen[want] {
			t.Errorf("west-1's audit log %s lacks alice's %q (has %v)", audit, want, seen)
		}
	}
}

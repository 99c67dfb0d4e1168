package node_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/wan"
)

// clientAs dials one node with a client certificate for principal, issued
// by the cluster's CA.
func clientAs(t *testing.T, tc *testCluster, principal, nodeID string) *client.Client {
	t.Helper()
	return dialNode(t, tc, tc.creds(principal, wan.RoleClient), nodeID)
}

// dialNode dials one node with creds; the client traces its requests, so
// the audit log can name their trace ids.
func dialNode(t *testing.T, tc *testCluster, creds *wan.Credentials, nodeID string) *client.Client {
	t.Helper()
	return tc.dialOnly(nodeID, client.Config{Credentials: creds, TracerProvider: sdktrace.NewTracerProvider()})
}

func wantForbidden(t *testing.T, what string, err error, mention string) {
	t.Helper()
	if !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("%s: %v, want forbidden", what, err)
	}
	if !strings.Contains(err.Error(), mention) {
		t.Fatalf("%s: %q does not say %q", what, err, mention)
	}
}

// Default deny, read without write, admin-only operations, grants that
// reach the other region, a revoke, a node that was down while a grant
// was made, node certificates as clients, and the audit log.
func TestGrantsAuthorizeAndReplicate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		auditDir := t.TempDir()
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, nodesPerRegion: 1, replicas: 1,
			tweak: func(c *node.Config) { c.Audit.Path = filepath.Join(auditDir, c.ID+".log") }})
		admin := dialNode(t, tc, tc.creds("admin", wan.RoleClient), "east-1")
		aliceWest := clientAs(t, tc, "alice", "west-1")

		_, err := aliceWest.Get(ctx(t), []byte("k"), nil)
		wantForbidden(t, "get without a grant", err, `meridian grant alice read default`)

		if _, err := admin.Put(ctx(t), []byte("k"), []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
		res, err := admin.Grant(ctx(t), "alice", "read", "default")
		if err != nil || !res.Changed || res.Effect != "read" {
			t.Fatalf("grant: %+v, %v", res, err)
		}
		// The grant was made at east-1; it holds at west-1.
		waitFor(t, func() error {
			_, err := aliceWest.Get(ctx(t), []byte("k"), nil)
			return err
		})
		_, err = aliceWest.Put(ctx(t), []byte("k"), []byte("x"), nil)
		wantForbidden(t, "put with read only", err, `may not write keyspace "default" (put): it needs the write grant (meridian grant alice write default)`)
		_, err = aliceWest.Inspect(ctx(t), "", []byte("k"))
		wantForbidden(t, "inspect with read", err, "admin")
		_, err = aliceWest.Repair(ctx(t), nil, nil)
		wantForbidden(t, "repair with read", err, "admin")
		_, err = aliceWest.Status(ctx(t))
		wantForbidden(t, "status with read", err, `meridian grant alice admin '*'`)
		_, err = aliceWest.Grant(ctx(t), "alice", "write", "default")
		wantForbidden(t, "self-grant", err, "admin")

		// A node that is down while a grant is made gets it by anti-entropy.
		if err := tc.kill("west-1"); err != nil {
			t.Fatal(err)
		}
		if res, err := admin.Grant(ctx(t), "alice", "admin", "default"); err != nil || res.Reached != 0 {
			t.Fatalf("grant while west-1 is down: %+v, %v", res, err)
		}
		if err := tc.start("west-1"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() error {
			_, err := aliceWest.Inspect(ctx(t), "", []byte("k"))
			return err
		})
		if _, err := aliceWest.Put(ctx(t), []byte("k"), []byte("x"), nil); err != nil {
			t.Fatalf("put with admin: %v", err)
		}

		// Revoke: admin gone, read still there.
		if res, err := admin.Revoke(ctx(t), "alice", "admin", "default"); err != nil || res.Effect != "read" {
			t.Fatalf("revoke: %+v, %v", res, err)
		}
		waitFor(t, func() error {
			if _, err := aliceWest.Put(ctx(t), []byte("k"), []byte("y"), nil); !errors.Is(err, client.ErrForbidden) {
				return fmt.Errorf("put after revoke: %v", err)
			}
			return nil
		})
		list, err := admin.Grants(ctx(t), "alice")
		if err != nil || len(list.Grants) != 1 || strings.Join(list.Grants[0].Permissions, ",") != "read" {
			t.Fatalf("grants of alice: %+v, %v", list, err)
		}

		// A node certificate is not a client.
		_, err = dialNode(t, tc, tc.creds("east-1", wan.RoleNode), "west-1").Get(ctx(t), []byte("k"), nil)
		wantForbidden(t, "get with a node certificate", err, "node certificate")

		// A certificate of another CA is refused at the handshake.
		foreign, _, err := wan.NewCA("foreign", time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		certPEM, keyPEM, err := foreign.Issue("mallory", wan.RoleClient, nil, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		// It trusts the cluster CA (no secret), so only the node refuses.
		bundle := slices.Clone(tc.sim.CA().CertPEM)
		mallory, err := wan.NewCredentials(append(bundle, foreign.CertPEM...), certPEM, keyPEM, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dialNode(t, tc, mallory, "west-1").Get(ctx(t), []byte("k"), nil); err == nil {
			t.Fatal("a certificate of another CA was served")
		}

		// The refusals are in west-1's audit log, with the principal.
		waitFor(t, func() error {
			f, err := os.Open(filepath.Join(auditDir, "west-1.log"))
			if err != nil {
				return err
			}
			defer f.Close()
			seen, refusedCert := map[string]bool{}, false
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var ev node.AuditEvent
				if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
					return fmt.Errorf("audit line %q: %v", sc.Text(), err)
				}
				if ev.Operation == "connect" && ev.Outcome == node.AuditRefused && strings.Contains(ev.Reason, "mallory") {
					refusedCert = true
				}
				if ev.Outcome == node.AuditForbidden && ev.Remote != "" && ev.Time != "" && len(ev.TraceID) == 32 {
					seen[ev.Principal+" "+ev.Operation] = true
				}
			}
			if !refusedCert {
				return errors.New("audit log lacks the refused certificate")
			}
			for _, want := range []string{"alice get", "alice put", "alice inspect", "alice status", "east-1 get"} {
				if !seen[want] {
					return fmt.Errorf("audit log lacks a forbidden %q (has %v)", want, seen)
				}
			}
			return nil
		})
		b, _ := os.ReadFile(filepath.Join(auditDir, "east-1.log"))
		if !strings.Contains(string(b), `"operation":"grant","keyspace":"default","outcome":"ok","detail":"grant read to \"alice\""`) {
			t.Fatalf("east-1's audit log lacks the grant:\n%s", b)
		}
	})
}

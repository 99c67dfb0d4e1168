package node

import (
	"strings"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/grants"
	"github.com/meridian-kv/meridian/wan"
)

func TestAuthConfigValidation(t *testing.T) {
	c := validConfig()
	c.Auth.Superusers = []string{"admin", "ops"}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid superusers refused: %v", err)
	}
	c.Auth.Superusers = []string{"", "ops", "ops", "*", "bad\tname"}
	err := c.Validate()
	if err == nil {
		t.Fatal("bad superusers accepted")
	}
	for _, want := range []string{"auth.superusers[0]: grants: empty principal", `auth.superusers[2]: "ops" is listed twice`, `auth.superusers[3]: grants: "*" is not a principal`, "auth.superusers[4]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

// The node's decision table, over the superusers and the grant table,
// for clients and for node certificates.
func TestCheckDecisions(t *testing.T) {
	c := validConfig()
	c.Auth.Superusers = []string{"root"}
	n := &Node{cfg: c}
	n.auth.superusers = map[string]bool{"root": true}
	n.auth.table = newTableWith(t, "alice", "default", "read")
	client := func(name string) wan.Identity { return wan.Identity{Name: name, Role: wan.RoleClient} }
	cases := []struct {
		who      wan.Identity
		op, ks   string
		need     string
		allowed  bool
		mentions string
	}{
		{client("root"), "status", "*", "admin", true, ""},
		{client("root"), "put", "any", "write", true, ""},
		{client("alice"), "get", "default", "read", true, ""},
		{client("alice"), "put", "default", "write", false, `principal "alice" may not write keyspace "default" (put): it needs the write grant (meridian grant alice write default)`},
		{client("alice"), "inspect", "default", "admin", false, `may not run inspect on keyspace "default": it needs the admin grant`},
		{client("alice"), "ring", "*", "admin", false, `may not run ring: it needs admin on every keyspace (meridian grant alice admin '*')`},
		{client("bob"), "get", "default", "read", false, "meridian grant bob read default"},
		{wan.Identity{Name: "east-1", Role: wan.RoleNode}, "get", "default", "read", false, `"east-1" presents a node certificate, which may not send client requests (get)`},
	}
	for _, tc := range cases {
		cerr := n.check(tc.who, tc.op, tc.ks, mustPerm(t, tc.need))
		if (cerr == nil) != tc.allowed {
			t.Errorf("%v %s %s: %v, want allowed=%v", tc.who, tc.op, tc.ks, cerr, tc.allowed)
			continue
		}
		if cerr != nil && (cerr.Code != "forbidden" || !strings.Contains(cerr.Message, tc.mentions)) {
			t.Errorf("%v %s %s: %q (%s), want forbidden mentioning %q", tc.who, tc.op, tc.ks, cerr.Message, cerr.Code, tc.mentions)
		}
	}
}

func mustPerm(t *testing.T, s string) grants.Permission {
	t.Helper()
	p, err := grants.ParsePermission(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newTableWith(t *testing.T, principal, keyspace, perm string) *grants.Table {
	t.Helper()
	var clock grants.Clock
	tab := grants.NewTable()
	e, err := grants.NewEntry(principal, keyspace, mustPerm(t, perm), true, clock.Next(time.Unix(1, 0), "east-1"))
	if err == nil {
		_, err = tab.Merge(e)
	}
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

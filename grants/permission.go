package grants

import (
	"fmt"
	"strings"
)

// Permission is one right on a keyspace.
type Permission uint8

// Permissions. Admin on a keyspace implies Read and Write on it and allows
// inspecting and repairing it and granting on it; Admin on AllKeyspaces is
// cluster administration.
const (
	Read Permission = iota + 1
	Write
	Admin
)

// AllKeyspaces names every keyspace in a grant.
const AllKeyspaces = "*"

// Permissions lists every permission, weakest first.
var Permissions = []Permission{Read, Write, Admin}

func (p Permission) String() string {
	switch p {
	case Read:
		return "read"
	case Write:
		return "write"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("permission(%d)", uint8(p))
}

// Valid reports whether p is a known permission.
func (p Permission) Valid() bool { return p >= Read && p <= Admin }

// ParsePermission parses "read", "write" or "admin" (any case).
func ParsePermission(s string) (Permission, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "read":
		return Read, nil
	case "write":
		return Write, nil
	case "admin":
		return Admin, nil
	}
	return 0, fmt.Errorf("grants: unknown permission %q: want read, write or admin", s)
}

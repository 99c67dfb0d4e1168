package api

import "errors"

// MsgType values of grant management (see docs/security.md).
const (
	TypeGrant       = 60 // GrantRequest (grant or revoke) -> GrantResponse
	TypeGrantReply  = 61
	TypeGrants      = 62 // GrantsRequest -> GrantsResponse
	TypeGrantsReply = 63
)

// CodeForbidden is the code of a request its principal may not make.
const CodeForbidden = "forbidden"

// ErrForbidden matches (errors.Is) every ClientError with CodeForbidden.
var ErrForbidden = errors.New("meridian: forbidden")

// Is makes errors.Is(err, ErrForbidden) true for a forbidden refusal.
func (e *ClientError) Is(target error) bool {
	return target == ErrForbidden && e.Code == CodeForbidden
}

// GrantRequest grants (or, with Revoke, revokes) one permission ("read",
// "write" or "admin") on a keyspace ("*" = every keyspace) to a principal
// (a client certificate's name).
type GrantRequest struct {
	_          struct{} `cbor:",toarray"`
	V          uint8
	Principal  string
	Permission string
	Keyspace   string
	Revoke     bool
}

// GrantResponse reports a grant or revoke: it is stored on the node that
// answered, which pushed it to every member it knows; Reached of Members
// other nodes acknowledged it, and the rest get it by anti-entropy within
// seconds of being reachable.
type GrantResponse struct {
	_        struct{} `cbor:",toarray"`
	V        uint8    `json:"-"`
	Node     string   `json:"node"`
	Changed  bool     `json:"changed"` // false: the table already said so
	Members  int      `json:"members"` // other members the change was pushed to
	Reached  int      `json:"reached"` // of those, how many acknowledged it
	Warning  string   `json:"warning,omitempty"`
	Effect   string   `json:"effect"` // what the principal may now do on the keyspace, e.g. "read, write"
	Keyspace string   `json:"keyspace"`
}

// GrantsRequest lists grants; Principal "" lists every grant the caller
// may see.
type GrantsRequest struct {
	_         struct{} `cbor:",toarray"`
	V         uint8
	Principal string
}

// Grant is one principal's permissions on one keyspace.
type Grant struct {
	_           struct{} `cbor:",toarray"`
	Principal   string   `json:"principal"`
	Keyspace    string   `json:"keyspace"`
	Permissions []string `json:"permissions"`
	// Superuser: the node configuration's auth.superusers lists the
	// principal (admin on every keyspace; not revocable by command).
	Superuser bool `json:"superuser,omitempty"`
}

// GrantsResponse lists grants, sorted by principal and keyspace.
type GrantsResponse struct {
	_      struct{} `cbor:",toarray"`
	V      uint8    `json:"-"`
	Node   string   `json:"node"`
	Grants []Grant  `json:"grants"`
}

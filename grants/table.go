package grants

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"unicode"
	"unicode/utf8"
)

// Bounds of the table. Every node keeps the whole table in memory and in
// one record of its store, and ships it whole when two nodes' tables
// differ, so it is bounded: MaxEntries facts (revoked ones included) of
// names up to MaxNameLen bytes keep it under 1 MiB.
const (
	MaxEntries = 2048
	MaxNameLen = 128
)

// ErrFull is returned when a merge would add a fact to a full table.
var ErrFull = fmt.Errorf("grants: the grant table holds its maximum of %d entries (granted and revoked facts, one per principal, keyspace and permission); grant on the keyspace \"*\" instead of on many keyspaces, or reuse principals", MaxEntries)

// Entry is one fact: whether Principal holds Permission on Keyspace, as of
// Stamp.
type Entry struct {
	_          struct{} `cbor:",toarray"`
	Principal  string
	Keyspace   string
	Permission Permission
	// Granted is false for a revoke: the fact stays, so the revoke wins
	// over the older grant wherever they meet.
	Granted bool
	Stamp   Stamp
}

// NewEntry builds and validates an entry.
func NewEntry(principal, keyspace string, p Permission, granted bool, s Stamp) (Entry, error) {
	e := Entry{Principal: principal, Keyspace: keyspace, Permission: p, Granted: granted, Stamp: s}
	return e, e.Validate()
}

// Validate checks an entry's names, permission and stamp.
func (e *Entry) Validate() error {
	var errs []error
	if err := CheckPrincipal(e.Principal); err != nil {
		errs = append(errs, err)
	}
	if err := CheckKeyspace(e.Keyspace); err != nil {
		errs = append(errs, err)
	}
	if !e.Permission.Valid() {
		errs = append(errs, fmt.Errorf("grants: unknown permission %d", e.Permission))
	}
	if e.Stamp.Writer == "" || len(e.Stamp.Writer) > MaxNameLen {
		errs = append(errs, fmt.Errorf("grants: entry for %q on %q has no valid writer in its stamp", e.Principal, e.Keyspace))
	}
	return errors.Join(errs...)
}

// CheckPrincipal validates a principal name: a client certificate's common
// name of 1 to MaxNameLen bytes of printable UTF-8, not "*".
func CheckPrincipal(name string) error {
	if name == AllKeyspaces {
		return errors.New(`grants: "*" is not a principal: grant to each principal by name`)
	}
	return checkName("principal", name)
}

// CheckKeyspace validates a keyspace name in a grant ("*" is every
// keyspace).
func CheckKeyspace(name string) error { return checkName("keyspace", name) }

func checkName(what, name string) error {
	if name == "" {
		return fmt.Errorf("grants: empty %s name", what)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("grants: %s name of %d bytes is longer than %d", what, len(name), MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("grants: %s name %q is not valid UTF-8", what, name)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("grants: %s name %q holds a control or non-printable character", what, name)
		}
	}
	return nil
}

type factKey struct {
	principal, keyspace string
	perm                Permission
}

func keyOf(e *Entry) factKey { return factKey{e.Principal, e.Keyspace, e.Permission} }

// Table is a set of facts, at most one per (principal, keyspace,
// permission). It is not safe for concurrent use.
type Table struct {
	m      map[factKey]Entry
	digest *[32]byte // cached; nil after a change
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{m: map[factKey]Entry{}} }

// Len returns the number of facts, revoked ones included.
func (t *Table) Len() int { return len(t.m) }

// wins reports whether a replaces b (same fact): the later stamp, and on
// equal stamps (which one writer never issues twice) the revoke, so the
// choice is the same on every node.
func wins(a, b *Entry) bool {
	if c := a.Stamp.Compare(b.Stamp); c != 0 {
		return c > 0
	}
	return !a.Granted && b.Granted
}

// Merge joins one fact into the table and reports whether the table
// changed. An invalid entry, or a new fact when the table is full, is
// refused with an error and changes nothing.
func (t *Table) Merge(e Entry) (bool, error) {
	if err := e.Validate(); err != nil {
		return false, err
	}
	k := keyOf(&e)
	old, ok := t.m[k]
	if ok && !wins(&e, &old) {
		return false, nil
	}
	if !ok && len(t.m) >= MaxEntries {
		return false, ErrFull
	}
	t.m[k] = e
	t.digest = nil
	return true, nil
}

// MergeAll merges every entry; it reports how many changed the table and
// the errors of those refused (the others are merged regardless).
func (t *Table) MergeAll(es []Entry) (int, error) {
	changed := 0
	var errs []error
	for _, e := range es {
		ok, err := t.Merge(e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			changed++
		}
	}
	return changed, errors.Join(errs...)
}

// Get returns the fact of (principal, keyspace, p), if any.
func (t *Table) Get(principal, keyspace string, p Permission) (Entry, bool) {
	e, ok := t.m[factKey{principal, keyspace, p}]
	return e, ok
}

// Entries returns every fact, sorted by principal, keyspace and
// permission.
func (t *Table) Entries() []Entry {
	out := make([]Entry, 0, len(t.m))
	for _, e := range t.m {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if a.Principal != b.Principal {
			return a.Principal < b.Principal
		}
		if a.Keyspace != b.Keyspace {
			return a.Keyspace < b.Keyspace
		}
		return a.Permission < b.Permission
	})
	return out
}

// Clone returns an independent copy.
func (t *Table) Clone() *Table {
	c := &Table{m: make(map[factKey]Entry, len(t.m))}
	for k, e := range t.m {
		c.m[k] = e
	}
	return c
}

// Digest is a hash of the whole table: two tables have the same digest
// exactly when they hold the same facts with the same stamps (up to
// SHA-256 collisions). Nodes compare digests to find out cheaply whether
// they must exchange their tables.
func (t *Table) Digest() [32]byte {
	if t.digest != nil {
		return *t.digest
	}
	h := sha256.New()
	var buf []byte
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	for _, e := range t.Entries() {
		buf = buf[:0]
		str(e.Principal)
		str(e.Keyspace)
		buf = append(buf, byte(e.Permission))
		if e.Granted {
			buf = append(buf, 1)
		} else {
			buf = append(buf, 0)
		}
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.Stamp.Wall))
		buf = binary.BigEndian.AppendUint32(buf, e.Stamp.Logical)
		str(e.Stamp.Writer)
		h.Write(buf)
	}
	var d [32]byte
	h.Sum(d[:0])
	t.digest = &d
	return d
}

// Allows reports whether principal holds need on keyspace: granted on the
// keyspace or on "*", directly or through admin (which implies read and
// write). Asking about keyspace "*" asks about every keyspace at once, which
// only a grant on "*" gives. Nothing is allowed by default.
func (t *Table) Allows(principal, keyspace string, need Permission) bool {
	for _, ks := range []string{keyspace, AllKeyspaces} {
		for _, p := range []Permission{need, Admin} {
			if e, ok := t.m[factKey{principal, ks, p}]; ok && e.Granted {
				return true
			}
		}
		if keyspace == AllKeyspaces {
			break
		}
	}
	return false
}

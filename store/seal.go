package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// Encryption at rest. With a Keyring in Options (or set later with
// SetKeyring), every value that holds user data — objects (values,
// siblings, causal contexts) and hints, write-ahead hints included — is
// sealed before it reaches Pebble:
//
//	sealedFormatV1 | len(key id) (1 byte) | key id | nonce (12 bytes) | AES-256-GCM ciphertext and tag
//
// The additional authenticated data is the header (format byte, key id
// length, key id) followed by the record's Pebble key, so a sealed value
// copied under another key, or relabelled with another key id, fails to
// open. The plaintext is the record's unsealed form (its own format byte
// first), so a value written before encryption was turned on — which
// starts with that format byte — stays readable. Pebble keys, the tombstone
// index, repair state and the identity file are not sealed (the package
// doc says why).

// KeyLen is the length of an encryption key: AES-256.
const KeyLen = 32

// MaxKeyIDLen bounds a key id, in bytes.
const MaxKeyIDLen = 64

// sealedFormatV1 is the leading byte of a sealed value. Unsealed records
// start with their own format byte (objectFormatV1, hintFormatV1,
// hintFormatRef), never this one.
const sealedFormatV1 byte = 0xe1

const (
	nonceLen = 12 // GCM's standard 96-bit nonce
	tagLen   = 16
)

var (
	// ErrUnknownKey is wrapped by the error of a value sealed under a key
	// id that is not in the keyring (or of any sealed value when the
	// store has no keyring). The value is left in place: put the key back
	// in the key file and reload.
	ErrUnknownKey = errors.New("store: value sealed under a key that is not in the keyring")

	// ErrNoKeyring is returned by Reencrypt on a store without keys.
	ErrNoKeyring = errors.New("store: no encryption keys configured (set encryption.key_file in the node configuration)")
)

// Keyring holds the AES-256 keys a store seals and opens values with, by
// key id, and the id of the active key, which seals every new value. A
// Keyring is immutable and safe for concurrent use; rotation builds a new
// one and swaps it in (Store.SetKeyring).
type Keyring struct {
	active string
	aeads  map[string]cipher.AEAD
	ids    []string // sorted
}

// NewKeyring returns a keyring of keys (key id → 32-byte key) whose active
// key is active. It reports every problem at once.
func NewKeyring(active string, keys map[string][]byte) (*Keyring, error) {
	var errs []error
	kr := &Keyring{active: active, aeads: make(map[string]cipher.AEAD, len(keys))}
	for id, key := range keys {
		if err := ValidKeyID(id); err != nil {
			errs = append(errs, err)
			continue
		}
		if len(key) != KeyLen {
			errs = append(errs, fmt.Errorf("store: key %q is %d bytes, want %d (AES-256)", id, len(key), KeyLen))
			continue
		}
		block, err := aes.NewCipher(key)
		if err == nil {
			kr.aeads[id], err = cipher.NewGCM(block)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("store: key %q: %w", id, err))
			continue
		}
		kr.ids = append(kr.ids, id)
	}
	sort.Strings(kr.ids)
	switch {
	case active == "":
		errs = append(errs, errors.New("store: no active key id (name the key that encrypts new values)"))
	case keys[active] == nil:
		errs = append(errs, fmt.Errorf("store: active key %q is not among the keys %v", active, sortedIDs(keys)))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return kr, nil
}

func sortedIDs(keys map[string][]byte) []string {
	ids := make([]string, 0, len(keys))
	for id := range keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// ValidKeyID checks a key id: 1 to MaxKeyIDLen letters, digits, '.', '_'
// or '-'.
func ValidKeyID(id string) error {
	if id == "" || len(id) > MaxKeyIDLen {
		return fmt.Errorf("store: key id %q must be 1 to %d characters", id, MaxKeyIDLen)
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("store: key id %q may hold only letters, digits, '.', '_' and '-'", id)
		}
	}
	return nil
}

// Active returns the id of the key that seals new values ("" for a nil
// keyring: encryption off).
func (k *Keyring) Active() string {
	if k == nil {
		return ""
	}
	return k.active
}

// IDs returns the ids of the keys, sorted (none for a nil keyring).
func (k *Keyring) IDs() []string {
	if k == nil {
		return nil
	}
	return slices.Clone(k.ids)
}

// sealedKeyID returns the key id of a sealed value and the length of its
// header; sealed is false for an unsealed value.
func sealedKeyID(v []byte) (id string, hdrLen int, sealed bool, err error) {
	if len(v) == 0 || v[0] != sealedFormatV1 {
		return "", 0, false, nil
	}
	if len(v) < 2 {
		return "", 0, true, fmt.Errorf("%w: sealed value of %d bytes has no key id", ErrCorrupt, len(v))
	}
	hdrLen = 2 + int(v[1])
	if v[1] == 0 || len(v) < hdrLen+nonceLen+tagLen {
		return "", 0, true, fmt.Errorf("%w: sealed value of %d bytes is too short for its header, nonce and tag", ErrCorrupt, len(v))
	}
	return string(v[2:hdrLen]), hdrLen, true, nil
}

// seal returns plain sealed under kr's active key for Pebble key k, or
// plain itself when kr is nil (encryption off).
func (kr *Keyring) seal(k, plain []byte) ([]byte, error) {
	if kr == nil {
		return plain, nil
	}
	aead := kr.aeads[kr.active]
	hdrLen := 2 + len(kr.active)
	out := make([]byte, hdrLen+nonceLen, hdrLen+nonceLen+len(plain)+tagLen)
	out[0] = sealedFormatV1
	out[1] = byte(len(kr.active))
	copy(out[2:], kr.active)
	if _, err := rand.Read(out[hdrLen:]); err != nil {
		return nil, fmt.Errorf("store: seal: %w", err)
	}
	aad := make([]byte, 0, hdrLen+len(k))
	aad = append(append(aad, out[:hdrLen]...), k...)
	return aead.Seal(out, out[hdrLen:], plain, aad), nil
}

// open returns the plaintext of the value v stored under Pebble key k: v
// itself when it is unsealed (written before encryption was turned on),
// else its decryption. The result may alias v. Errors wrap ErrUnknownKey
// (a key id not in kr; kr may be nil) or ErrCorrupt (a damaged or
// tampered value).
func (kr *Keyring) open(k, v []byte) ([]byte, error) {
	id, hdrLen, sealed, err := sealedKeyID(v)
	if err != nil || !sealed {
		return v, err
	}
	if kr == nil {
		return nil, fmt.Errorf("%w: key id %q, but this store has no encryption keys (set encryption.key_file to a key file holding %q)", ErrUnknownKey, id, id)
	}
	aead, ok := kr.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w: key id %q (the keyring holds %v; put key %q back in the key file and reload)", ErrUnknownKey, id, kr.ids, id)
	}
	aad := make([]byte, 0, hdrLen+len(k))
	aad = append(append(aad, v[:hdrLen]...), k...)
	plain, err := aead.Open(nil, v[hdrLen:hdrLen+nonceLen], v[hdrLen+nonceLen:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed value does not authenticate under key %q (tampered, damaged, or moved from another record)", ErrCorrupt, id)
	}
	return plain, nil
}

// SetKeyring makes kr the store's keyring: values written from now on are
// sealed under kr's active key, and values are opened with kr's keys.
// A nil kr turns sealing off (sealed values then no longer open). Calls in
// flight may still use the previous keyring; the row cache is emptied.
func (s *Store) SetKeyring(kr *Keyring) {
	s.keys.Store(kr)
	// Cached plaintext must not outlive the keys that opened it.
	s.rows.purge()
}

// Keyring returns the store's keyring, or nil when encryption is off.
func (s *Store) Keyring() *Keyring { return s.keys.Load() }

// seal seals plain, the value of Pebble key k, under the active key (a
// no-op without a keyring).
func (s *Store) seal(k, plain []byte) ([]byte, error) { return s.keys.Load().seal(k, plain) }

// open opens v, the value of Pebble key k (see Keyring.open).
func (s *Store) open(k, v []byte) ([]byte, error) { return s.keys.Load().open(k, v) }

package store

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// A key file holds a node's encryption keys, in YAML:
//
//	active: k2
//	keys:
//	  k1: <base64 of 32 random bytes>
//	  k2: <base64 of 32 random bytes>
//
// The active key seals every new value; every key listed opens values
// sealed under it. The file must not be readable by group or others
// (mode 0600 or stricter): LoadKeyFile refuses it otherwise, as ssh
// refuses a private key others can read.

// keyFile is a key file's YAML.
type keyFile struct {
	Active string            `yaml:"active"`
	Keys   map[string]string `yaml:"keys"`
}

// keyFileHeader starts every key file WriteKeyFile writes.
const keyFileHeader = "# Meridian encryption-at-rest keys (AES-256, base64). Keep this file secret and backed up:\n" +
	"# values sealed under a key are lost if the key is. See docs/security.md.\n"

// LoadKeyFile reads a key file and returns its keyring. Every error names
// the file and says what to fix.
func LoadKeyFile(path string) (*Keyring, error) {
	f, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	keys := make(map[string][]byte, len(f.Keys))
	var errs []error
	for id, enc := range f.Keys {
		b, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			errs = append(errs, fmt.Errorf("key %q is not base64: %w", id, err))
			continue
		}
		keys[id] = b
	}
	if len(f.Keys) == 0 {
		errs = append(errs, errors.New("no keys (meridian keys generate --file FILE adds one)"))
	} else if len(errs) == 0 {
		kr, err := NewKeyring(f.Active, keys)
		if err == nil {
			return kr, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("store: key file %s: %w", path, errors.Join(errs...))
}

// readKeyFile reads and parses a key file, checking its mode.
func readKeyFile(path string) (*keyFile, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("store: key file: %w", err)
	}
	if err := checkKeyFileMode(path, fi.Mode()); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("store: key file: %w", err)
	}
	var f keyFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("store: key file %s: %w (want `active: ID` and `keys: {ID: base64 of 32 bytes}`)", path, err)
	}
	return &f, nil
}

// checkKeyFileMode refuses a key file readable or writable by group or
// others. (Windows has no such bits; it is not checked there.)
func checkKeyFileMode(path string, mode fs.FileMode) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	if !mode.IsRegular() {
		return fmt.Errorf("store: key file %s is not a regular file", path)
	}
	if mode.Perm()&0o077 != 0 {
		return fmt.Errorf("store: key file %s has mode %04o: group and others must have no access (run chmod 600 %s)", path, mode.Perm(), path)
	}
	return nil
}

// GenerateKey adds a new random key to the key file at path, creating the
// file (mode 0600) if it does not exist, and returns its id. id "" picks
// the first free id of k1, k2, …. The new key becomes the active one if
// activate is set or the file had no keys; otherwise the file's active key
// stays, so a key can be distributed to every node before any node seals
// with it. The file is replaced atomically (a new file renamed over it).
func GenerateKey(path, id string, activate bool) (string, error) {
	f := &keyFile{Keys: map[string]string{}}
	if _, err := os.Stat(path); err == nil {
		if f, err = readKeyFile(path); err != nil {
			return "", err
		}
		if f.Keys == nil {
			f.Keys = map[string]string{}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("store: key file: %w", err)
	}
	if id == "" {
		for i := len(f.Keys) + 1; ; i++ {
			if _, taken := f.Keys["k"+strconv.Itoa(i)]; !taken {
				id = "k" + strconv.Itoa(i)
				break
			}
		}
	}
	if err := ValidKeyID(id); err != nil {
		return "", err
	}
	if _, taken := f.Keys[id]; taken {
		return "", fmt.Errorf("store: key file %s already holds a key %q (choose another --id)", path, id)
	}
	key := make([]byte, KeyLen)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("store: generate key: %w", err)
	}
	f.Keys[id] = base64.StdEncoding.EncodeToString(key)
	if activate || f.Active == "" {
		f.Active = id
	}
	return id, writeKeyFile(path, f)
}

// RemoveKey removes key id from the key file at path. The active key
// cannot be removed (activate another first). Values still sealed under
// the removed key no longer open once nodes reload: run meridian
// reencrypt on every node first.
func RemoveKey(path, id string) error {
	f, err := readKeyFile(path)
	if err != nil {
		return err
	}
	if _, ok := f.Keys[id]; !ok {
		return fmt.Errorf("store: key file %s holds no key %q", path, id)
	}
	if id == f.Active {
		return fmt.Errorf("store: key %q is the active key of %s: activate another key before removing it", id, path)
	}
	delete(f.Keys, id)
	return writeKeyFile(path, f)
}

// writeKeyFile writes f to path atomically, mode 0600.
func writeKeyFile(path string, f *keyFile) error {
	b, err := yaml.Marshal(f)
	if err != nil {
		return fmt.Errorf("store: key file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("store: key file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("store: key file: %w", err)
	}
	if _, err := tmp.Write(append([]byte(keyFileHeader), b...)); err != nil {
		tmp.Close()
		return fmt.Errorf("store: key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("store: key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store: key file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("store: key file: %w", err)
	}
	return nil
}

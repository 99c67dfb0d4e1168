package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/version"
)

// testKeyring returns a keyring of the named random keys, ids[0] active.
func testKeyring(t testing.TB, keys map[string][]byte, active string) *Keyring {
	t.Helper()
	kr, err := NewKeyring(active, keys)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func randomKeys(ids ...string) map[string][]byte {
	out := map[string][]byte{}
	for _, id := range ids {
		k := make([]byte, KeyLen)
		rand.Read(k)
		out[id] = k
	}
	return out
}

// openSealed opens a store on fs with keyring kr.
func openSealed(t testing.TB, fs vfs.FS, kr *Keyring) *Store {
	t.Helper()
	s, err := Open("db", &Options{FS: fs, Logger: quiet, Keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawValues returns every Pebble value of the given record kind.
func rawValues(t testing.TB, s *Store, kind byte) map[string][]byte {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	out := map[string][]byte{}
	for valid := it.First(); valid; valid = it.Next() {
		out[string(it.Key())] = bytes.Clone(it.Value())
	}
	return out
}

// keyIDOf returns the key id a raw value is sealed under, or "" if it is
// not sealed.
func keyIDOf(t testing.TB, v []byte) string {
	t.Helper()
	id, _, _, err := sealedKeyID(v)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSealOpenRoundTrip(t *testing.T) {
	kr := testKeyring(t, randomKeys("k1"), "k1")
	k := []byte("o-pebble-key")
	plain := []byte("\x01secret value")
	v, err := kr.seal(k, plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(v, []byte("secret value")) {
		t.Fatal("sealed value holds the plaintext")
	}
	if got := keyIDOf(t, v); got != "k1" {
		t.Errorf("sealed under %q, want k1", got)
	}
	if len(v) != len(plain)+2+len("k1")+nonceLen+tagLen {
		t.Errorf("sealed length %d for %d bytes of plaintext", len(v), len(plain))
	}
	got, err := kr.open(k, v)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open = %q, %v", got, err)
	}
	// Two seals of the same value differ (random nonces).
	v2, _ := kr.seal(k, plain)
	if bytes.Equal(v, v2) {
		t.Error("two seals of one value are identical: the nonce is not random")
	}
	// Under another Pebble key, the value does not open.
	if _, err := kr.open([]byte("o-other-key"), v); !errors.Is(err, ErrCorrupt) {
		t.Errorf("open under another key: %v, want ErrCorrupt", err)
	}
	// An unsealed value opens as itself.
	if got, err := kr.open(k, plain); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("open of an unsealed value = %q, %v", got, err)
	}
}

func TestKeyringValidation(t *testing.T) {
	for _, tt := range []struct {
		name   string
		active string
		keys   map[string][]byte
		want   string
	}{
		{"no active", "", randomKeys("k1"), "no active key"},
		{"active missing", "k2", randomKeys("k1"), `active key "k2" is not among the keys [k1]`},
		{"short key", "k1", map[string][]byte{"k1": make([]byte, 16)}, `key "k1" is 16 bytes, want 32`},
		{"bad id", "k1", map[string][]byte{"k1": make([]byte, 32), "a b": make([]byte, 32)}, `key id "a b" may hold only`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewKeyring(tt.active, tt.keys)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewKeyring: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestSealedStore writes objects, hints and write-ahead hints through a
// store with a keyring and checks every one is sealed on disk and reads
// back; the value never appears in Pebble's values.
func TestSealedStore(t *testing.T) {
	fs := vfs.NewMem()
	s := openSealed(t, fs, testKeyring(t, randomKeys("k1"), "k1"))
	defer s.Close()
	secret := "the-secret-value"
	if _, _, err := s.Update("ks", []byte("a"), put("n1", secret+"-a")); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.UpdateQueued("ks", []byte("b"), put("n1", secret+"-b"), queued(nil)); err != nil {
		t.Fatal(err)
	}
	addHint(t, s, "n3", "ks", "c", written("n1", secret+"-c"), hintT0)
	if _, err := s.MergeMany("ks", []KeyObject{{Key: []byte("d"), Object: written("n2", secret+"-d")}}); err != nil {
		t.Fatal(err)
	}
	objects, hints := rawValues(t, s, kindObject), rawValues(t, s, kindHint)
	if len(objects) != 3 || len(hints) != 4 { // a, b, d; c for n3, and b for three targets
		t.Fatalf("%d objects and %d hints on disk, want 3 and 4", len(objects), len(hints))
	}
	for k, v := range mergeMaps(objects, hints) {
		if id := keyIDOf(t, v); id != "k1" {
			t.Errorf("record %q is sealed under %q, want k1", k, id)
		}
		if bytes.Contains(v, []byte(secret)) {
			t.Errorf("record %q holds the plaintext", k)
		}
	}
	for _, key := range []string{"a", "b", "d"} {
		obj, err := s.Get("ks", []byte(key))
		if err != nil || !slicesEqual(values(obj), []string{secret + "-" + key}) {
			t.Errorf("Get %s = %v, %v", key, values(obj), err)
		}
	}
	if hs := hintsOf(t, s, "n3"); len(hs) != 1 || !slicesEqual(values(hs[0].Object), []string{secret + "-c"}) {
		t.Errorf("hints of n3: %+v", hs)
	}
	n := 0
	if err := s.Scan("ks", 0, 0, func(uint64, []byte, *version.Object) error { n++; return nil }); err != nil || n != 3 {
		t.Errorf("Scan saw %d objects, %v", n, err)
	}
	checkHintStats(t, s)
	// ClearHints recognises the write's own (sealed) hint.
	obj, _ := s.Get("ks", []byte("b"))
	if cleared, err := s.ClearHints("ks", []byte("b"), obj, queued(nil).Targets); err != nil || cleared != 3 {
		t.Errorf("ClearHints = %d, %v; want 3", cleared, err)
	}
	checkHintStats(t, s)
}

func mergeMaps(a, b map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// TestUnsealedValuesStayReadable: values written before encryption was
// turned on are read as they are, and overwritten sealed.
func TestUnsealedValuesStayReadable(t *testing.T) {
	fs := vfs.NewMem()
	s := openSealed(t, fs, nil)
	if _, _, err := s.Update("ks", []byte("old"), put("n1", "plain")); err != nil {
		t.Fatal(err)
	}
	addHint(t, s, "n3", "ks", "old", written("n1", "plain"), hintT0)
	s.Close()

	s = openSealed(t, fs, testKeyring(t, randomKeys("k1"), "k1"))
	defer s.Close()
	obj, err := s.Get("ks", []byte("old"))
	if err != nil || !slicesEqual(values(obj), []string{"plain"}) {
		t.Fatalf("Get of an unsealed value = %v, %v", values(obj), err)
	}
	if hs := hintsOf(t, s, "n3"); len(hs) != 1 {
		t.Fatalf("hints of n3: %+v", hs)
	}
	if _, _, err := s.Update("ks", []byte("old"), put("n1", "sealed now")); err != nil {
		t.Fatal(err)
	}
	for k, v := range rawValues(t, s, kindObject) {
		if id := keyIDOf(t, v); id != "k1" {
			t.Errorf("rewritten %q sealed under %q", k, id)
		}
	}
}

// TestUnknownKeyAndTamper: a value sealed under a key the keyring lacks
// gives an error naming the key id (and ErrUnknownKey, not ErrCorrupt: a
// hint under it is not dropped as damaged); a tampered value fails
// authentication with ErrCorrupt.
func TestUnknownKeyAndTamper(t *testing.T) {
	fs := vfs.NewMem()
	keys := randomKeys("k1", "k2")
	s := openSealed(t, fs, testKeyring(t, keys, "k1"))
	if _, _, err := s.Update("ks", []byte("a"), put("n1", "v")); err != nil {
		t.Fatal(err)
	}
	addHint(t, s, "n3", "ks", "a", written("n1", "v"), hintT0)
	s.Close()

	for _, kr := range []*Keyring{testKeyring(t, map[string][]byte{"k2": keys["k2"]}, "k2"), nil} {
		s = openSealed(t, fs, kr)
		_, err := s.Get("ks", []byte("a"))
		if !errors.Is(err, ErrUnknownKey) || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `key id "k1"`) || !strings.Contains(err.Error(), `key "a"`) {
			t.Errorf("Get with keyring %v: %v, want ErrUnknownKey naming k1 and the key", kr, err)
		}
		if _, _, err := s.Update("ks", []byte("a"), put("n1", "w")); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("Update: %v, want ErrUnknownKey (never overwrite what cannot be read)", err)
		}
		if err := s.Hints("n3", 0, func(Hint) error { return nil }); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("Hints: %v, want ErrUnknownKey", err)
		}
		dropped, err := s.ExpireHints(hintT0.Add(DefaultHintMaxAge/2), 0)
		if err != nil || dropped["n3"] != 0 {
			t.Errorf("ExpireHints dropped %v, %v: a hint under a missing key must be kept", dropped, err)
		}
		if st := s.HintStats()["n3"]; st.Count != 1 {
			t.Errorf("hint stats of n3 %+v", st)
		}
		s.Close()
	}

	// Flip one byte of the ciphertext of the object.
	s = openSealed(t, fs, testKeyring(t, keys, "k1"))
	defer s.Close()
	k := objectKey("ks", placement.KeyToken([]byte("a")), []byte("a"))
	v := rawValues(t, s, kindObject)[string(k)]
	v[len(v)-20] ^= 1
	if err := s.db.Set(k, v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("ks", []byte("a")); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "does not authenticate") {
		t.Errorf("Get of a tampered value: %v, want ErrCorrupt saying it does not authenticate", err)
	}
	// A sealed value copied under another key does not open either.
	v = rawValues(t, s, kindHint)[string(hintKey("n3", "ks", placement.KeyToken([]byte("a")), []byte("a")))]
	k2 := hintKey("n4", "ks", placement.KeyToken([]byte("a")), []byte("a"))
	if err := s.db.Set(k2, v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.Hints("n4", 0, func(Hint) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Hints of a hint moved under another target: %v, want ErrCorrupt", err)
	}
}

// TestRotationAndReencrypt: after the active key changes, old values stay
// readable and new writes use the new key; Reencrypt rewrites the rest,
// after which the old key can go.
func TestRotationAndReencrypt(t *testing.T) {
	fs := vfs.NewMem()
	keys := randomKeys("k1", "k2")
	s := openSealed(t, fs, nil)
	if _, _, err := s.Update("ks", []byte("plain"), put("n1", "p")); err != nil {
		t.Fatal(err)
	}
	s.SetKeyring(testKeyring(t, map[string][]byte{"k1": keys["k1"]}, "k1"))
	const n = ReencryptBatch + 10 // more than one batch
	for i := range n {
		if _, _, err := s.Update("ks", []byte{'k', byte(i)}, put("n1", "v1")); err != nil {
			t.Fatal(err)
		}
	}
	addHint(t, s, "n3", "ks", "h", written("n1", "hinted"), hintT0)

	s.SetKeyring(testKeyring(t, keys, "k2"))
	if _, _, err := s.Update("ks", []byte("new"), put("n1", "v2")); err != nil {
		t.Fatal(err)
	}
	byID := map[string]int{}
	for _, v := range mergeMaps(rawValues(t, s, kindObject), rawValues(t, s, kindHint)) {
		byID[keyIDOf(t, v)]++
	}
	if byID[""] != 1 || byID["k1"] != n+1 || byID["k2"] != 1 {
		t.Fatalf("records by key id %v, want 1 unsealed, %d under k1, 1 under k2", byID, n+1)
	}
	if obj, err := s.Get("ks", []byte{'k', 3}); err != nil || !slicesEqual(values(obj), []string{"v1"}) {
		t.Errorf("old value after rotation: %v, %v", values(obj), err)
	}

	st, err := s.Reencrypt(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Active != "k2" || st.Rewritten != n+2 || st.Current != 1 || st.ByKey["k1"] != n+1 || st.ByKey[""] != 1 || st.Unreadable != 0 {
		t.Errorf("Reencrypt = %+v, want %d rewritten (%d from k1, 1 unsealed), 1 current", st, n+2, n+1)
	}
	checkHintStats(t, s)
	if st, err := s.Reencrypt(context.Background()); err != nil || st.Rewritten != 0 || st.Current != n+3 {
		t.Errorf("second Reencrypt = %+v, %v; want all current", st, err)
	}
	s.Close()

	// Without k1, everything still opens.
	s = openSealed(t, fs, testKeyring(t, map[string][]byte{"k2": keys["k2"]}, "k2"))
	defer s.Close()
	for i := range n {
		if obj, err := s.Get("ks", []byte{'k', byte(i)}); err != nil || !slicesEqual(values(obj), []string{"v1"}) {
			t.Fatalf("Get k%d without the old key: %v, %v", i, values(obj), err)
		}
	}
	if obj, err := s.Get("ks", []byte("plain")); err != nil || !slicesEqual(values(obj), []string{"p"}) {
		t.Errorf("formerly unsealed value: %v, %v", values(obj), err)
	}
	if hs := hintsOf(t, s, "n3"); len(hs) != 1 || !slicesEqual(values(hs[0].Object), []string{"hinted"}) {
		t.Errorf("hint after reencrypt: %+v", hs)
	}
	checkHintStats(t, s)
}

func TestReencryptWithoutKeyring(t *testing.T) {
	s := openMem(t)
	if _, err := s.Reencrypt(context.Background()); !errors.Is(err, ErrNoKeyring) {
		t.Errorf("Reencrypt without keys: %v, want ErrNoKeyring", err)
	}
}

// TestReencryptConcurrentWrites runs Reencrypt while writers update the
// same keys: no write is lost, and every record ends under the new key.
func TestReencryptConcurrentWrites(t *testing.T) {
	fs := vfs.NewMem()
	keys := randomKeys("k1", "k2")
	s := openSealed(t, fs, testKeyring(t, map[string][]byte{"k1": keys["k1"]}, "k1"))
	defer s.Close()
	const n = 300
	for i := range n {
		if _, _, err := s.Update("ks", []byte{'k', byte(i), byte(i >> 8)}, put("n1", "v0")); err != nil {
			t.Fatal(err)
		}
	}
	s.SetKeyring(testKeyring(t, keys, "k2"))
	done := make(chan error)
	go func() {
		for i := range n {
			if _, _, err := s.Update("ks", []byte{'k', byte(i), byte(i >> 8)}, put("n1", "v1")); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	if _, err := s.Reencrypt(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := range n {
		obj, err := s.Get("ks", []byte{'k', byte(i), byte(i >> 8)})
		if err != nil || !slicesEqual(values(obj), []string{"v1"}) {
			t.Fatalf("key %d = %v, %v; want v1", i, values(obj), err)
		}
	}
	for k, v := range rawValues(t, s, kindObject) {
		if id := keyIDOf(t, v); id != "k2" {
			t.Errorf("%q under %q after Reencrypt", k, id)
		}
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.yaml")
	id, err := GenerateKey(path, "", false)
	if err != nil || id != "k1" {
		t.Fatalf("GenerateKey on a new file = %q, %v", id, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode(), err)
	}
	kr, err := LoadKeyFile(path)
	if err != nil || kr.Active() != "k1" {
		t.Fatalf("LoadKeyFile = %v, %v", kr, err)
	}
	// A second key is added inactive unless asked.
	if id, err := GenerateKey(path, "", false); err != nil || id != "k2" {
		t.Fatalf("second GenerateKey = %q, %v", id, err)
	}
	if kr, _ := LoadKeyFile(path); kr.Active() != "k1" || !slicesEqual(kr.IDs(), []string{"k1", "k2"}) {
		t.Errorf("after adding k2: active %q, ids %v", kr.Active(), kr.IDs())
	}
	if _, err := GenerateKey(path, "blue", true); err != nil {
		t.Fatal(err)
	}
	if kr, _ := LoadKeyFile(path); kr.Active() != "blue" {
		t.Errorf("after --activate: active %q", kr.Active())
	}
	if _, err := GenerateKey(path, "blue", false); err == nil || !strings.Contains(err.Error(), `already holds a key "blue"`) {
		t.Errorf("duplicate id: %v", err)
	}
	if err := RemoveKey(path, "blue"); err == nil || !strings.Contains(err.Error(), "active key") {
		t.Errorf("removing the active key: %v", err)
	}
	if err := RemoveKey(path, "k1"); err != nil {
		t.Fatal(err)
	}
	if kr, _ := LoadKeyFile(path); !slicesEqual(kr.IDs(), []string{"blue", "k2"}) {
		t.Errorf("after removing k1: %v", kr.IDs())
	}

	bad := func(name, body string, mode os.FileMode, want string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		_, err := LoadKeyFile(p)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming the file and containing %q", name, err, want)
		}
	}
	good := "active: a\nkeys:\n  a: " + strings.Repeat("A", 43) + "=\n"
	bad("world.yaml", good, 0o644, "chmod 600")
	bad("short.yaml", "active: a\nkeys:\n  a: QUJD\n", 0o600, `key "a" is 3 bytes, want 32`)
	bad("noactive.yaml", "active: b\nkeys:\n  a: "+strings.Repeat("A", 43)+"=\n", 0o600, `active key "b" is not among the keys [a]`)
	bad("empty.yaml", "active: a\n", 0o600, "no keys")
	bad("typo.yaml", "activ: a\n", 0o600, "field activ not found")
	bad("base64.yaml", "active: a\nkeys:\n  a: '***'\n", 0o600, "not base64")
}

// FuzzOpenSealed feeds arbitrary stored values to open: it never panics;
// a value not in the sealed format comes back as it is; a sealed one
// either opens (only if it was made by seal under this key and Pebble key)
// or fails with ErrCorrupt or ErrUnknownKey.
func FuzzOpenSealed(f *testing.F) {
	kr := testKeyring(f, map[string][]byte{"k1": bytes.Repeat([]byte{7}, KeyLen)}, "k1")
	k := []byte("o-key")
	good, err := kr.seal(k, []byte("\x01value"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{sealedFormatV1})
	f.Add([]byte{sealedFormatV1, 2, 'k', '9'})
	f.Add(append([]byte{sealedFormatV1, 2, 'k', '9'}, make([]byte, 40)...))
	f.Add([]byte("\x01plain"))
	f.Fuzz(func(t *testing.T, v []byte) {
		got, err := kr.open(k, v)
		if len(v) == 0 || v[0] != sealedFormatV1 {
			if err != nil || !bytes.Equal(got, v) {
				t.Fatalf("unsealed value: open = %q, %v", got, err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("error of another class: %v", err)
			}
			return
		}
		// Forging a tag is 2^-128: only the seeds seal made (in this
		// process or the one that wrote the corpus; the key is fixed) open.
		if !bytes.Equal(got, []byte("\x01value")) || len(v) != len(good) {
			t.Fatalf("opened a value seal did not make: %x", v)
		}
	})
}

package store

import (
	"bytes"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// BenchmarkEncryption compares 1 KiB Updates (synced, on the real disk;
// and on an in-memory filesystem, which leaves the CPU cost) and point
// Gets with encryption at rest off and on, each pair side by side:
//
//	go test -run - -bench Encryption -count 5 ./store
func BenchmarkEncryption(b *testing.B) {
	value := bytes.Repeat([]byte("v"), 1024)
	modes := []struct {
		name string
		kr   *Keyring
	}{
		{"plain", nil},
		{"aes-gcm", testKeyring(b, randomKeys("k1"), "k1")},
	}
	open := func(b *testing.B, fs vfs.FS, kr *Keyring) *Store {
		dir := "db"
		if fs == nil {
			dir = b.TempDir()
		}
		s, err := Open(dir, &Options{FS: fs, Logger: quiet, Keyring: kr})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	update := func(b *testing.B, s *Store) {
		b.SetBytes(int64(len(value)))
		i := 0
		for b.Loop() {
			if _, _, err := s.Update("ks", benchKey(i), benchWrite(value)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	for _, m := range modes {
		b.Run("update-disk/"+m.name, func(b *testing.B) { update(b, open(b, nil, m.kr)) })
	}
	for _, m := range modes {
		b.Run("update-mem/"+m.name, func(b *testing.B) { update(b, open(b, vfs.NewMem(), m.kr)) })
	}
	for _, m := range modes {
		b.Run("get/"+m.name, func(b *testing.B) {
			s := open(b, vfs.NewMem(), m.kr)
			for i := range benchKeys {
				if _, _, err := s.Update("ks", benchKey(i), benchWrite(value)); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(value)))
			i := 0
			for b.Loop() {
				obj, err := s.Get("ks", benchKey(i*7919))
				if err != nil || len(obj.Siblings) != 1 {
					b.Fatal(obj, err)
				}
				i++
			}
		})
	}
}

// BenchmarkSeal measures sealing and opening one 1 KiB value alone: the
// CPU that encryption adds to every write and every read of a value.
func BenchmarkSeal(b *testing.B) {
	kr := testKeyring(b, randomKeys("k1"), "k1")
	k := objectKey("ks", 42, []byte("bench-key-000042"))
	plain := bytes.Repeat([]byte("v"), 1024)
	sealed, err := kr.seal(k, plain)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("seal", func(b *testing.B) {
		b.SetBytes(int64(len(plain)))
		for b.Loop() {
			if _, err := kr.seal(k, plain); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		b.SetBytes(int64(len(plain)))
		for b.Loop() {
			if _, err := kr.open(k, sealed); err != nil {
				b.Fatal(err)
			}
		}
	})
}

package store

import (
	"bytes"
	"testing"
)

// BenchmarkEncryption compares synced Updates and point Gets of 1 KiB
// values with encryption at rest off and on, side by side:
//
//	go test -run - -bench Encryption ./store
func BenchmarkEncryption(b *testing.B) {
	value := bytes.Repeat([]byte("v"), 1024)
	for _, mode := range []struct {
		name string
		kr   *Keyring
	}{
		{"plain", nil},
		{"aes-gcm", testKeyring(b, randomKeys("k1"), "k1")},
	} {
		open := func(b *testing.B) *Store {
			s, err := Open(b.TempDir(), &Options{Logger: quiet, Keyring: mode.kr})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}
		b.Run("update/"+mode.name, func(b *testing.B) {
			s := open(b)
			b.SetBytes(int64(len(value)))
			i := 0
			for b.Loop() {
				if _, _, err := s.Update("ks", benchKey(i), benchWrite(value)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run("get/"+mode.name, func(b *testing.B) {
			s := open(b)
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

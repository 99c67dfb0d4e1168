package store

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/meridian-kv/meridian/version"
)

const benchKeys = 4096

func benchKey(i int) []byte { return fmt.Appendf(nil, "bench-key-%06d", i%benchKeys) }

// openDisk opens a store with default options on a temporary directory of
// the real disk, so Update pays a real fsync.
func openDisk(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.TempDir(), &Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchWrite(value []byte) func(*version.Object) (*version.Object, error) {
	return func(cur *version.Object) (*version.Object, error) {
		return cur.Update(cur.Context(), "n1", version.Write{Value: value}), nil
	}
}

// BenchmarkUpdate measures synced read-modify-write Updates of 1 KiB
// values on the real disk: serial (one fsync per Update) and parallel
// (64 writers sharing fsyncs through group commit).
func BenchmarkUpdate(b *testing.B) {
	value := bytes.Repeat([]byte("v"), 1024)
	fn := benchWrite(value)
	b.Run("serial", func(b *testing.B) {
		s := openDisk(b)
		b.SetBytes(int64(len(value)))
		i := 0
		for b.Loop() {
			if _, _, err := s.Update("ks", benchKey(i), fn); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s := openDisk(b)
		b.SetBytes(int64(len(value)))
		b.SetParallelism(32) // × GOMAXPROCS writers
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := s.Update("ks", benchKey(int(next.Add(1))), fn); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkGet measures point reads of 1 KiB objects (in the block cache
// or memtable), serial and parallel.
func BenchmarkGet(b *testing.B) {
	s := openDisk(b)
	value := bytes.Repeat([]byte("v"), 1024)
	for i := range benchKeys {
		if _, _, err := s.Update("ks", benchKey(i), benchWrite(value)); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			obj, err := s.Get("ks", benchKey(i*7919))
			if err != nil || len(obj.Siblings) != 1 {
				b.Fatal(obj, err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				obj, err := s.Get("ks", benchKey(int(next.Add(7919))))
				if err != nil || len(obj.Siblings) != 1 {
					b.Error(obj, err)
					return
				}
			}
		})
	})
}

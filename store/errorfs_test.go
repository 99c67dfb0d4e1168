package store

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/meridian-kv/meridian/internal/walsync"
	"github.com/meridian-kv/meridian/version"
)

// syncedBuffer is a goroutine-safe log sink.
type syncedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestWALSyncErrorIsNotAcknowledged: when fsync of the write-ahead log
// fails, Update returns an error (the write is never acknowledged) and the
// store stops serving: no later write is acknowledged on a log that may
// have lost data, and no read returns data that may not be durable.
func TestWALSyncErrorIsNotAcknowledged(t *testing.T) {
	var armed atomic.Bool
	var injected atomic.Int64
	fs := walsync.OnSync(vfs.NewMem(), func() error {
		if armed.Load() {
			injected.Add(1)
			return errorfs.ErrInjected
		}
		return nil
	})
	var logs syncedBuffer
	s, err := Open("db", &Options{
		FS:     fs,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Update("ks", []byte("before"), put("n1", "v")); err != nil {
		t.Fatalf("Update before the fault: %v", err)
	}

	armed.Store(true)
	// Several writers at once, so the failure also reaches writers sharing
	// the failed group commit.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			_, _, errs[i] = s.Update("ks", []byte{'k', byte(i)}, put("n1", "v"))
		})
	}
	wg.Wait()
	if injected.Load() == 0 {
		t.Fatal("no sync error was injected: the test is vacuous")
	}
	for i, err := range errs {
		if !errors.Is(err, ErrFailed) {
			t.Errorf("Update %d during a failing fsync returned %v, want an error wrapping ErrFailed", i, err)
		}
	}

	// Healing the disk does not bring the store back: it needs a restart.
	armed.Store(false)
	if _, _, err := s.Update("ks", []byte("after"), put("n1", "v")); !errors.Is(err, ErrFailed) {
		t.Errorf("Update after the failure: %v, want ErrFailed", err)
	}
	if _, err := s.Get("ks", []byte("before")); !errors.Is(err, ErrFailed) {
		t.Errorf("Get after the failure: %v, want ErrFailed", err)
	}
	if err := s.Scan("ks", 0, 0, func(uint64, []byte, *version.Object) error { return nil }); !errors.Is(err, ErrFailed) {
		t.Errorf("Scan after the failure: %v, want ErrFailed", err)
	}
	if !strings.Contains(logs.String(), "fatal") {
		t.Errorf("the fatal error was not logged; logs:\n%s", logs.String())
	}
	t.Logf("Close after the failure: %v", s.Close())
}

// walSyncsFailing is an in-memory filesystem whose write-ahead log syncs
// fail while armed is set.
func walSyncsFailing(armed *atomic.Bool) vfs.FS {
	return walsync.OnSync(vfs.NewMem(), func() error {
		if armed.Load() {
			return errorfs.ErrInjected
		}
		return nil
	})
}

// A queued write whose log sync fails after Applied ran is not
// acknowledged either: UpdateQueued returns ErrFailed, and the caller,
// told by Applied that the write may have left, says so.
func TestWALSyncErrorAfterApplied(t *testing.T) {
	var armed atomic.Bool
	s, err := Open("db", &Options{FS: walSyncsFailing(&armed), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	armed.Store(true)
	var applied atomic.Bool
	q := queued(nil)
	q.Applied = func(*version.Object) { applied.Store(true) }
	if _, _, _, err := s.UpdateQueued("ks", []byte("k"), put("n1", "v"), q); !errors.Is(err, ErrFailed) {
		t.Fatalf("UpdateQueued with a failing sync returned %v, want ErrFailed", err)
	}
	if !applied.Load() {
		t.Fatal("Applied was not called before the sync failed: the test shows nothing")
	}
}

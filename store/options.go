package store

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// DefaultCacheSize is the block cache size used when Options.CacheSize is 0.
const DefaultCacheSize = 64 << 20

// Options configure a Store. The zero value (and a nil *Options) means
// defaults.
type Options struct {
	// FS is the filesystem; nil means the real disk (vfs.Default, wrapped
	// in Pebble's disk-health checks). Tests use vfs.NewMem or
	// vfs.NewCrashableMem.
	FS vfs.FS
	// Logger receives Pebble's messages. Nil means info messages are
	// discarded and errors are logged through slog.Default().
	Logger *slog.Logger
	// CacheSize is the block cache size in bytes; 0 means DefaultCacheSize
	// (64 MiB).
	CacheSize int64
	// RowCacheSize is the budget in bytes of the row cache, which keeps
	// the plaintext of recently used objects so that reads skip Pebble and
	// decryption (rowcache.go); 0 means DefaultRowCacheSize (32 MiB), a
	// negative size turns it off.
	RowCacheSize int64
	// Now is the clock of tombstone arrival times; nil means time.Now.
	Now func() time.Time
	// NodeID names the node the data directory belongs to: a new directory
	// records it in its identity (IdentityFile), and a directory created
	// for another node is refused. Empty means any owner.
	NodeID string
	// Keyring, if set, turns on encryption at rest: objects and hints are
	// sealed with AES-256-GCM under its active key, and opened with any of
	// its keys (seal.go). Nil means values are stored unsealed; values
	// sealed earlier then fail to open with ErrUnknownKey. Store.SetKeyring
	// swaps it at run time (key rotation).
	Keyring *Keyring
}

// Validate reports every problem with o at once.
func (o *Options) Validate() error {
	if o == nil {
		return nil
	}
	var errs []error
	if o.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("store: negative CacheSize %d (use 0 for the %d MiB default)", o.CacheSize, DefaultCacheSize>>20))
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy of o (which may be nil) with defaults filled in.
func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.CacheSize == 0 {
		out.CacheSize = DefaultCacheSize
	}
	if out.RowCacheSize == 0 {
		out.RowCacheSize = DefaultRowCacheSize
	}
	return out
}

// Pebble settings for a small node; the package doc gives the reasons.
const (
	memTableSize          = 8 << 20
	memTableStopWrites    = 4
	l0StopWritesThreshold = 24
	bloomBitsPerKey       = 10
	formatMajorVersion    = pebble.FormatTableFormatV6
)

// pebbleOptions translates o (with defaults applied) into Pebble's options.
func (o *Options) pebbleOptions(log *pebbleLogger) *pebble.Options {
	po := &pebble.Options{
		FS:                          o.FS, // nil: Pebble uses vfs.Default with disk-health checks
		CacheSize:                   o.CacheSize,
		FormatMajorVersion:          formatMajorVersion,
		Logger:                      log,
		EventListener:               log.eventListener(),
		MemTableSize:                memTableSize,
		MemTableStopWritesThreshold: memTableStopWrites,
		L0StopWritesThreshold:       l0StopWritesThreshold,
		CompactionConcurrencyRange:  func() (int, int) { return 1, 2 },
	}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey)
		po.Levels[i].FilterType = pebble.TableFilter
	}
	return po
}

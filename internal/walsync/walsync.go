// Package walsync lets tests act on the syncs of Pebble's write-ahead log:
// hold one while a write is in flight, count them, or fail them.
package walsync

import (
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// OnSync wraps fs so that every sync of a write-ahead log file (*.log)
// first calls at, and fails with its error if it returns one.
func OnSync(fs vfs.FS, at func() error) vfs.FS {
	return errorfs.Wrap(fs, errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if strings.HasSuffix(op.Path, ".log") {
				return at()
			}
		}
		return nil
	}))
}

package bench

import "context"

// Driver is one target under load. Its methods are called from many
// goroutines at once and must be safe for concurrent use; each blocks until
// the operation has completed or failed. consistency is the level the run
// asks for, in the target's own terms (Meridian: ONE, LOCAL_QUORUM, …; a
// peer maps it to its nearest equivalent).
type Driver interface {
	// Read reads key.
	Read(ctx context.Context, key []byte, consistency string) error
	// Update writes value to key (a blind write: YCSB's update replaces
	// the whole record).
	Update(ctx context.Context, key, value []byte, consistency string) error
	// ReadModifyWrite reads key, then writes value over what it read (for
	// Meridian, with the read's causal context, so the write supersedes
	// it rather than adding a sibling).
	ReadModifyWrite(ctx context.Context, key, value []byte, consistency string) error
}

package store

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Repair state: small records under kind 'r', keyed by a name the repair
// code chooses (a session checkpoint, a datacenter pair's last completed
// repair). Their bytes are opaque to the store; writes are synced, so a
// checkpoint survives a crash and a resumed repair starts from it.

// MaxRepairStateLen bounds one repair-state record.
const MaxRepairStateLen = 1 << 20

func repairStateKey(name string) []byte {
	return append([]byte{kindRepair}, name...)
}

// PutRepairState stores value under name, synced.
func (s *Store) PutRepairState(name string, value []byte) (err error) {
	if name == "" {
		return errors.New("store: repair state needs a name")
	}
	if len(value) > MaxRepairStateLen {
		return fmt.Errorf("store: repair state %q of %d bytes exceeds %d", name, len(value), MaxRepairStateLen)
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	defer catchFatal(&err, s.fail)
	if err := s.db.Set(repairStateKey(name), value, s.wo); err != nil {
		return fmt.Errorf("store: write repair state %q: %w", name, err)
	}
	return nil
}

// RepairState returns the value stored under name, or nil if there is
// none.
func (s *Store) RepairState(name string) (value []byte, err error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	defer catchFatal(&err, s.fail)
	v, closer, err := s.db.Get(repairStateKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read repair state %q: %w", name, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

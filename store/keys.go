package store

import (
	"encoding/binary"
	"fmt"
)

// Record kinds: the first byte of every Pebble key (see the package doc).
const (
	kindObject byte = 'o'
	kindHint   byte = 'h' // hinted-handoff records (hints.go)
	kindRepair byte = 'r' // repair state: checkpoints, last completed repairs (repairstate.go)
	// kindTombstone indexes tombstones by key, with their arrival time (tombstones.go).
	kindTombstone byte = 't'
	kindMeta      byte = 'm' // single store-wide records, such as the dot floor
)

const tokenLen = 8

// keyspacePrefix returns kind | uvarint(len(ks)) | ks: the prefix every
// record of that kind in keyspace ks starts with, and no other record.
func keyspacePrefix(kind byte, ks string) []byte {
	p := make([]byte, 0, 1+binary.MaxVarintLen64+len(ks)+tokenLen)
	p = append(p, kind)
	p = binary.AppendUvarint(p, uint64(len(ks)))
	return append(p, ks...)
}

// objectKey returns the Pebble key of key (with ring token tok) in keyspace ks.
func objectKey(ks string, tok uint64, key []byte) []byte {
	p := keyspacePrefix(kindObject, ks)
	out := make([]byte, 0, len(p)+tokenLen+len(key))
	out = append(out, p...)
	out = binary.BigEndian.AppendUint64(out, tok)
	return append(out, key...)
}

// splitObjectKey parses the part of an object key after its keyspace
// prefix (of length prefixLen). The returned key aliases k.
func splitObjectKey(k []byte, prefixLen int) (tok uint64, key []byte, err error) {
	if len(k) < prefixLen+tokenLen {
		return 0, nil, fmt.Errorf("object key of %d bytes is shorter than its prefix and token", len(k))
	}
	rest := k[prefixLen:]
	return binary.BigEndian.Uint64(rest), rest[tokenLen:], nil
}

// prefixEnd returns the smallest key greater than every key that starts
// with p, or nil if there is none (p is all 0xff). Record prefixes start
// with a kind byte below 0xff, so for them it is never nil.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

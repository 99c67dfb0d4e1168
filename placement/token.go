package placement

import "github.com/cespare/xxhash/v2"

// Token is a position on the 64-bit ring.
type Token = uint64

// KeyToken returns the ring position of a key. It depends on the key bytes
// only, so every node and every release computes the same token; the store
// lays keys out in token order so a token range is one contiguous scan.
func KeyToken(key []byte) Token { return xxhash.Sum64(key) }

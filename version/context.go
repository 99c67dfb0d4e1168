package version

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/meridian-kv/meridian/codec"
)

// MaxContextLen bounds an encoded causal context accepted from a client.
const MaxContextLen = 64 << 10

// maxContextCounter bounds each counter of a context accepted from a
// client. No node coordinates 2^62 writes of one key, so a larger counter is
// forged or corrupt; near 2^64 it would make Update's next counter wrap to
// 0, so the write would reuse dots other replicas already cover and be lost.
const maxContextCounter = 1 << 62

// ErrBadContext is returned for a causal context that was not produced by
// a Meridian read.
var ErrBadContext = errors.New("version: malformed causal context (pass back the context string a get printed, unchanged)")

// EncodeContext returns the opaque, URL-safe string form of a causal
// context. The empty vector encodes as "".
func EncodeContext(v Vector) string {
	if len(v) == 0 {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(AppendClock(nil, v))
}

// DecodeContext parses a string made by EncodeContext.
func DecodeContext(s string) (Vector, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > MaxContextLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrBadContext, MaxContextLen)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadContext, err)
	}
	r := codec.NewReader(b)
	v := readClock(&r)
	if !r.Done() {
		// Not the usual shape: the reflecting decoder decodes or refuses it.
		v = nil
		if err := codec.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadContext, err)
		}
	}
	for _, a := range v.Actors() {
		if v[a] > maxContextCounter {
			return nil, fmt.Errorf("%w: counter %d of actor %q out of range", ErrBadContext, v[a], a)
		}
	}
	return v, nil
}

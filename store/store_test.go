package store

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/version"
)

// quiet is the logger of tests that expect no Pebble errors.
var quiet = slog.New(slog.DiscardHandler)

// openMem opens a store on a fresh in-memory filesystem, closed at the
// end of the test.
func openMem(t testing.TB) *Store {
	t.Helper()
	s, err := Open("db", &Options{FS: vfs.NewMem(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// put returns an Update fn that writes val coordinated by actor, having
// seen the current object (a read-modify-write).
func put(actor, val string) func(*version.Object) (*version.Object, error) {
	return func(cur *version.Object) (*version.Object, error) {
		return cur.Update(cur.Context(), actor, version.Write{Value: []byte(val)}), nil
	}
}

// blind returns an Update fn that writes val without having read
// (it becomes a sibling of what is there).
func blind(actor, val string) func(*version.Object) (*version.Object, error) {
	return func(cur *version.Object) (*version.Object, error) {
		return cur.Update(nil, actor, version.Write{Value: []byte(val)}), nil
	}
}

func values(o *version.Object) []string {
	var out []string
	for _, v := range o.Values() {
		out = append(out, string(v))
	}
	return out
}

func TestGetNeverWritten(t *testing.T) {
	s := openMem(t)
	obj, err := s.Get("ks", []byte("nobody"))
	if err != nil {
		t.Fatal(err)
	}
	if obj == nil || !obj.IsEmpty() {
		t.Fatalf("Get of a never-written key = %+v, want an empty non-nil object", obj)
	}
}

func TestUpdate(t *testing.T) {
	errFn := errors.New("fn refused")
	// a stored object: "a" by n1, then a concurrent "b" by n2.
	base := version.New().Update(nil, "n1", version.Write{Value: []byte("a")})
	base = base.Update(nil, "n2", version.Write{Value: []byte("b")})

	tests := []struct {
		name        string
		start       *version.Object // stored before the Update (nil: nothing)
		fn          func(*version.Object) (*version.Object, error)
		wantErr     error
		wantChanged bool
		wantValues  []string // of the returned object and of a Get after
	}{
		{name: "first write", fn: put("n1", "x"), wantChanged: true, wantValues: []string{"x"}},
		{name: "read-modify-write supersedes", start: base, fn: put("n1", "c"), wantChanged: true, wantValues: []string{"c"}},
		{name: "blind write adds a sibling", start: base, fn: blind("n3", "c"), wantChanged: true, wantValues: []string{"a", "b", "c"}},
		{name: "nil result writes nothing", start: base,
			fn:         func(*version.Object) (*version.Object, error) { return nil, nil },
			wantValues: []string{"a", "b"}},
		{name: "nil result on a new key", fn: func(*version.Object) (*version.Object, error) { return nil, nil }},
		{name: "equal result writes nothing", start: base,
			fn: func(cur *version.Object) (*version.Object, error) {
				return version.Merge(cur, version.New()), nil // a different pointer, equal content
			},
			wantValues: []string{"a", "b"}},
		{name: "fn error is returned as is", start: base,
			fn:         func(*version.Object) (*version.Object, error) { return nil, errFn },
			wantErr:    errFn,
			wantValues: []string{"a", "b"}},
		{name: "fn error discards its object", start: base,
			fn: func(cur *version.Object) (*version.Object, error) {
				return cur.Update(cur.Context(), "n1", version.Write{Value: []byte("no")}), errFn
			},
			wantErr:    errFn,
			wantValues: []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openMem(t)
			key := []byte("k")
			if tt.start != nil {
				if _, _, err := s.Update("ks", key, func(*version.Object) (*version.Object, error) { return tt.start, nil }); err != nil {
					t.Fatal(err)
				}
			}
			var seen *version.Object
			obj, changed, err := s.Update("ks", key, func(cur *version.Object) (*version.Object, error) {
				seen = cur
				return tt.fn(cur)
			})
			if err != tt.wantErr { // as is: not wrapped
				t.Fatalf("Update error = %v, want %v", err, tt.wantErr)
			}
			if want := tt.start; !version.Equal(seen, want) {
				t.Errorf("fn saw %+v, want the stored %+v", seen, want)
			}
			if err != nil {
				if obj != nil || changed {
					t.Errorf("Update returned (%+v, %v) with an error", obj, changed)
				}
			} else {
				if changed != tt.wantChanged {
					t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
				}
				if got := values(obj); !slicesEqual(got, tt.wantValues) {
					t.Errorf("returned values %q, want %q", got, tt.wantValues)
				}
			}
			got, err := s.Get("ks", key)
			if err != nil {
				t.Fatal(err)
			}
			if v := values(got); !slicesEqual(v, tt.wantValues) {
				t.Errorf("stored values %q, want %q", v, tt.wantValues)
			}
			if err == nil && obj != nil && !version.Equal(got, obj) {
				t.Errorf("Get = %+v, Update returned %+v", got, obj)
			}
		})
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMerge(t *testing.T) {
	a := version.New().Update(nil, "n1", version.Write{Value: []byte("a")})
	b := version.New().Update(nil, "n2", version.Write{Value: []byte("b")})
	ab := version.Merge(a, b)
	c := ab.Update(ab.Context(), "n1", version.Write{Value: []byte("c")}) // supersedes a and b

	tests := []struct {
		name        string
		stored      []*version.Object // merged in first, in order
		in          *version.Object
		wantChanged bool
		wantValues  []string
	}{
		{name: "into nothing", in: a, wantChanged: true, wantValues: []string{"a"}},
		{name: "concurrent becomes sibling", stored: []*version.Object{a}, in: b, wantChanged: true, wantValues: []string{"a", "b"}},
		{name: "same again is idempotent", stored: []*version.Object{a, b}, in: ab, wantValues: []string{"a", "b"}},
		{name: "older is ignored", stored: []*version.Object{c}, in: a, wantValues: []string{"c"}},
		{name: "newer supersedes", stored: []*version.Object{a, b}, in: c, wantChanged: true, wantValues: []string{"c"}},
		{name: "empty changes nothing", stored: []*version.Object{a}, in: version.New(), wantValues: []string{"a"}},
		{name: "nil changes nothing", stored: []*version.Object{a}, in: nil, wantValues: []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openMem(t)
			key := []byte("k")
			for _, o := range tt.stored {
				if _, _, err := s.Merge("ks", key, o); err != nil {
					t.Fatal(err)
				}
			}
			obj, changed, err := s.Merge("ks", key, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			if got := values(obj); !slicesEqual(got, tt.wantValues) {
				t.Errorf("values %q, want %q", got, tt.wantValues)
			}
			got, err := s.Get("ks", key)
			if err != nil {
				t.Fatal(err)
			}
			if !version.Equal(got, obj) {
				t.Errorf("Get = %+v, Merge returned %+v", got, obj)
			}
		})
	}
}

func TestKeyspacesAreSeparate(t *testing.T) {
	s := openMem(t)
	key := []byte("same")
	// "a" and "ab" share a prefix; the length prefix keeps them apart.
	for _, ks := range []string{"a", "ab", "b"} {
		if _, _, err := s.Update(ks, key, put("n1", "in-"+ks)); err != nil {
			t.Fatal(err)
		}
	}
	for _, ks := range []string{"a", "ab", "b"} {
		obj, err := s.Get(ks, key)
		if err != nil {
			t.Fatal(err)
		}
		if got := values(obj); !slicesEqual(got, []string{"in-" + ks}) {
			t.Errorf("keyspace %q holds %q", ks, got)
		}
	}
}

func TestValidation(t *testing.T) {
	s := openMem(t)
	longest := bytes.Repeat([]byte("k"), MaxKeyLen)
	tooLong := bytes.Repeat([]byte("k"), MaxKeyLen+1)
	noop := func(*version.Object) (*version.Object, error) { return nil, nil }

	tests := []struct {
		name string
		ks   string
		key  []byte
		want error
	}{
		{name: "empty keyspace", ks: "", key: []byte("k"), want: ErrEmptyKeyspace},
		{name: "key too large", ks: "ks", key: tooLong, want: ErrKeyTooLarge},
		{name: "longest key", ks: "ks", key: longest},
		{name: "empty key", ks: "ks", key: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := map[string]error{}
			_, calls["Get"] = s.Get(tt.ks, tt.key)
			_, _, calls["Update"] = s.Update(tt.ks, tt.key, noop)
			_, _, calls["Merge"] = s.Merge(tt.ks, tt.key, version.New())
			if _, _, err := s.Update(tt.ks, tt.key, put("n1", "v")); tt.want == nil && err != nil {
				t.Fatalf("writing a valid key: %v", err)
			}
			for name, err := range calls {
				if !errors.Is(err, tt.want) {
					t.Errorf("%s error = %v, want %v", name, err, tt.want)
				}
			}
		})
	}
	if err := s.Scan("", 0, 0, nil); !errors.Is(err, ErrEmptyKeyspace) {
		t.Errorf("Scan of the empty keyspace: %v", err)
	}
	_, err := s.Get("ks", tooLong)
	if !strings.Contains(err.Error(), "64 KiB") || !strings.HasPrefix(err.Error(), "store: ") {
		t.Errorf("key-too-large message %q should name the limit", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("db", &Options{FS: fs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Update("ks", []byte("k"), put("n1", "v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	if _, err := s.Get("ks", []byte("k")); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if _, _, err := s.Update("ks", []byte("k"), put("n1", "w")); !errors.Is(err, ErrClosed) {
		t.Errorf("Update after Close: %v, want ErrClosed", err)
	}
	if err := s.Scan("ks", 0, 0, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Scan after Close: %v, want ErrClosed", err)
	}
	if n := s.DiskUsage(); n != 0 {
		t.Errorf("DiskUsage after Close = %d", n)
	}

	s, err = Open("db", &Options{FS: fs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	obj, err := s.Get("ks", []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	if got := values(obj); !slicesEqual(got, []string{"v"}) {
		t.Errorf("after reopen: %q", got)
	}
	if s.DiskUsage() == 0 {
		t.Error("DiskUsage = 0 for a store holding data")
	}
}

func TestOpenOptions(t *testing.T) {
	if _, err := Open("db", &Options{FS: vfs.NewMem(), CacheSize: -1}); err == nil || !strings.Contains(err.Error(), "CacheSize") {
		t.Errorf("negative CacheSize: %v", err)
	}
	if _, err := Open("", nil); err == nil {
		t.Error("empty directory accepted")
	}
	// nil options: the real disk, defaults.
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Update("ks", []byte("k"), put("n1", "v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptRecord(t *testing.T) {
	key := []byte("k")
	tok := placement.KeyToken(key)
	tests := []struct {
		name  string
		value []byte
	}{
		{name: "empty", value: []byte{}},
		{name: "unknown format", value: []byte{9, 0x82, 0xa0, 0x80}},
		{name: "not cbor", value: []byte{objectFormatV1, 0xff, 0xfe}},
		{name: "truncated", value: mustEncode(t, version.New().Update(nil, "n1", version.Write{Value: []byte("value")}))[:8]},
		{name: "trailing bytes", value: append(mustEncode(t, version.New()), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openMem(t)
			if err := s.db.Set(objectKey("ks", tok, key), tt.value, nil); err != nil {
				t.Fatal(err)
			}
			_, err := s.Get("ks", key)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `keyspace "ks" key "k"`) {
				t.Errorf("Get: %v, want ErrCorrupt naming the key", err)
			}
			called := false
			_, _, err = s.Update("ks", key, func(cur *version.Object) (*version.Object, error) {
				called = true
				return cur, nil
			})
			if !errors.Is(err, ErrCorrupt) || called {
				t.Errorf("Update: %v (fn called: %v), want ErrCorrupt without calling fn", err, called)
			}
			err = s.Scan("ks", 0, 0, func(uint64, []byte, *version.Object) error { return nil })
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("Scan: %v, want ErrCorrupt", err)
			}
		})
	}
}

func mustEncode(t testing.TB, o *version.Object) []byte {
	t.Helper()
	b, err := encodeObject(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestObjectRoundTrip(t *testing.T) {
	o := version.New().Update(nil, "n1", version.Write{Value: []byte("a"), WrittenAt: 42, Trace: bytes.Repeat([]byte{7}, 16)})
	o = o.Update(nil, "n2", version.Write{Deleted: true})
	for _, in := range []*version.Object{version.New(), o} {
		got, err := decodeObject(mustEncode(t, in))
		if err != nil {
			t.Fatal(err)
		}
		if !version.Equal(got, in) {
			t.Errorf("round trip of %+v gave %+v", in, got)
		}
	}
}

// FuzzDecodeObject: decoding arbitrary bytes returns an object or an
// error, never panics, and what decodes re-encodes to a value that decodes
// to an equal object.
func FuzzDecodeObject(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{objectFormatV1})
	f.Add(mustEncode(f, version.New()))
	f.Add(mustEncode(f, version.New().Update(nil, "n1", version.Write{Value: []byte("v")})))
	f.Fuzz(func(t *testing.T, b []byte) {
		obj, err := decodeObject(b)
		if err != nil {
			return
		}
		again, err := decodeObject(mustEncode(t, obj))
		if err != nil {
			t.Fatalf("re-encoded object does not decode: %v", err)
		}
		if !version.Equal(obj, again) {
			t.Fatalf("round trip changed %+v into %+v", obj, again)
		}
	})
}

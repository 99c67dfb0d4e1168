package store

import (
	"bytes"
	"testing"
)

func TestPrefixEnd(t *testing.T) {
	tests := []struct{ in, want []byte }{
		{[]byte("o\x01a"), []byte("o\x01b")},
		{[]byte("o\x01\xff"), []byte("o\x02")},
		{[]byte("o\x02\xff\xff"), []byte("o\x03")},
		{[]byte{0xff, 0xff}, nil},
	}
	for _, tt := range tests {
		if got := prefixEnd(tt.in); !bytes.Equal(got, tt.want) {
			t.Errorf("prefixEnd(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestKeyspacePrefixesDisjoint: no keyspace's prefix is a prefix of
// another's, so their records never interleave.
func TestKeyspacePrefixesDisjoint(t *testing.T) {
	names := []string{"a", "ab", "abc", "b", "\x01", "\x01a", "\x02ab", "a\x00", "\xff", string(bytes.Repeat([]byte("x"), 127)), string(bytes.Repeat([]byte("x"), 128))}
	for _, x := range names {
		for _, y := range names {
			if x == y {
				continue
			}
			px, py := keyspacePrefix(kindObject, x), keyspacePrefix(kindObject, y)
			if bytes.HasPrefix(py, px) {
				t.Errorf("prefix of %q (%q) is a prefix of that of %q (%q)", x, px, y, py)
			}
		}
	}
}

func TestObjectKeyLayout(t *testing.T) {
	k := objectKey("ks", 0x0102030405060708, []byte("key"))
	want := []byte("o\x02ks\x01\x02\x03\x04\x05\x06\x07\x08key")
	if !bytes.Equal(k, want) {
		t.Fatalf("objectKey = %q, want %q", k, want)
	}
	tok, key, err := splitObjectKey(k, len(keyspacePrefix(kindObject, "ks")))
	if err != nil || tok != 0x0102030405060708 || string(key) != "key" {
		t.Errorf("splitObjectKey = %x, %q, %v", tok, key, err)
	}
	if _, _, err := splitObjectKey(k[:8], 4); err == nil {
		t.Error("short key accepted")
	}
}

// TestRecordKindsDisjoint: records of different kinds never share a
// prefix, whatever their keyspace.
func TestRecordKindsDisjoint(t *testing.T) {
	kinds := []byte{kindObject, kindHint, kindRepair}
	for i, a := range kinds {
		for _, b := range kinds[i+1:] {
			if a == b {
				t.Fatalf("record kind %q used twice", a)
			}
			if bytes.HasPrefix(keyspacePrefix(b, "ks"), keyspacePrefix(a, "ks")) {
				t.Errorf("kind %q records overlap kind %q records", b, a)
			}
		}
	}
}

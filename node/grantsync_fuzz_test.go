package node

import (
	"testing"

	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/grants"
)

// FuzzGrantSet decodes a grant replication message as a node does and
// merges its entries: whatever the bytes, decoding fails cleanly or the
// merge keeps the table valid and bounded, and merging the same entries
// again changes nothing (a replayed push is harmless).
func FuzzGrantSet(f *testing.F) {
	for _, es := range [][]grants.Entry{
		nil,
		{{Principal: "alice", Keyspace: "default", Permission: grants.Read, Granted: true, Stamp: grants.Stamp{Wall: 1, Writer: "east-1"}}},
		{{Principal: "ops", Keyspace: "*", Permission: grants.Admin, Granted: true, Stamp: grants.Stamp{Wall: 2, Logical: 3, Writer: "west-1"}},
			{Principal: "alice", Keyspace: "default", Permission: grants.Write, Granted: false, Stamp: grants.Stamp{Wall: 2, Writer: "west-1"}}},
		{{Principal: "", Keyspace: "default", Permission: 7}},
	} {
		b, err := codec.Marshal(&grantSet{Digest: []byte{1, 2, 3}, Entries: es})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var in grantSet
		if err := codec.Unmarshal(data, &in); err != nil {
			return
		}
		tab := grants.NewTable()
		tab.MergeAll(in.Entries)
		if tab.Len() > grants.MaxEntries || tab.Len() > len(in.Entries) {
			t.Fatalf("table of %d entries from %d", tab.Len(), len(in.Entries))
		}
		for _, e := range tab.Entries() {
			if err := e.Validate(); err != nil {
				t.Fatalf("an invalid entry was merged: %+v: %v", e, err)
			}
		}
		d := tab.Digest()
		if n, _ := tab.MergeAll(in.Entries); n != 0 || tab.Digest() != d {
			t.Fatalf("merging the same entries again changed %d", n)
		}
		if _, err := codec.Marshal(tab.Entries()); err != nil {
			t.Fatalf("a merged table does not encode: %v", err)
		}
	})
}

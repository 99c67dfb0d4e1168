package node_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/version"
)

// TestReloadEncryptionKeys rotates the keys of a running two-region
// cluster: after a new key is activated and reloaded, old values stay
// readable and new ones are sealed under the new key; removing the old key
// before re-encryption makes old values fail with an error naming it;
// after meridian reencrypt (through the client, fanned out to both nodes)
// the old key can go and every value stays readable. (The process test
// restarts nodes on the rotated key file.)
func TestReloadEncryptionKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, nodesPerRegion: 1, replicas: 1})
		ids := []string{"east-1", "west-1"}
		keyFile := tc.config("east-1").Encryption.KeyFile
		if keyFile == "" || tc.config("west-1").Encryption.KeyFile != keyFile {
			t.Fatal("the dev cluster's nodes do not name the dev key file")
		}
		reloadAll := func() {
			t.Helper()
			for _, id := range ids {
				if err := tc.nodes[id].ReloadEncryptionKeys(); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Re-encryption is a cluster admin operation.
		_, err := clientAs(t, tc, "mallory", "east-1").Reencrypt(ctx(t), true)
		wantForbidden(t, "reencrypt without admin", err, `may not run reencrypt`)

		keys := []string{"a", "b", "c", "d", "e"}
		for _, k := range keys {
			if _, err := tc.client.Put(ctx(t), []byte(k), []byte("old-"+k), nil); err != nil {
				t.Fatal(err)
			}
		}
		// Every copy is sealed (under k1) before the rotation: a copy to
		// west-1 still in flight would land under k2.
		waitFor(t, func() error { return tc.inFlight("") })
		checkAll := func(when string) {
			t.Helper()
			for _, k := range append(keys, "new") {
				want := "old-" + k
				if k == "new" {
					want = "new-value"
				}
				res, err := tc.client.Get(ctx(t), []byte(k), nil)
				if err != nil || len(res.Values) != 1 || string(res.Values[0]) != want {
					t.Fatalf("%s: get %s = %+v, %v; want %q", when, k, res, err, want)
				}
			}
		}

		if _, err := store.GenerateKey(keyFile, "k2", true); err != nil {
			t.Fatal(err)
		}
		reloadAll()
		for _, id := range ids {
			if got := tc.nodes[id].Store().Keyring().Active(); got != "k2" {
				t.Fatalf("%s seals under %q after reload, want k2", id, got)
			}
		}
		if _, err := tc.client.Put(ctx(t), []byte("new"), []byte("new-value"), nil); err != nil {
			t.Fatal(err)
		}
		checkAll("after rotation")

		// A reload that fails keeps the keys in use.
		both, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(keyFile, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := tc.nodes["east-1"].ReloadEncryptionKeys(); err == nil || !strings.Contains(err.Error(), keyFile) {
			t.Errorf("reload of a world-readable key file: %v, want an error naming it", err)
		}
		os.Chmod(keyFile, 0o600)
		if got := tc.nodes["east-1"].Store().Keyring().IDs(); len(got) != 2 {
			t.Errorf("keys after a failed reload: %v", got)
		}

		// Without k1, and before re-encryption, old values fail to open,
		// naming the key.
		if err := store.RemoveKey(keyFile, "k1"); err != nil {
			t.Fatal(err)
		}
		reloadAll()
		_, err = tc.nodes["east-1"].Store().Get("default", []byte("a"))
		if !errors.Is(err, store.ErrUnknownKey) || !strings.Contains(err.Error(), `"k1"`) {
			t.Fatalf("read of a value under a removed key: %v, want ErrUnknownKey naming k1", err)
		}
		if err := os.WriteFile(keyFile, both, 0o600); err != nil {
			t.Fatal(err)
		}
		reloadAll()

		res, err := tc.client.Reencrypt(ctx(t), true)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Nodes) != 2 {
			t.Fatalf("reencrypt reported %d nodes, want 2: %+v", len(res.Nodes), res.Nodes)
		}
		for i, r := range res.Nodes {
			if r.Node != ids[i] || r.Error != "" || r.ActiveKey != "k2" || r.ByKey["k1"] != int64(len(keys)) || r.Rewritten != int64(len(keys)) || r.Current != 1 || r.Unreadable != 0 {
				t.Errorf("reencrypt of %s: %+v; want %d rewritten from k1, 1 current", ids[i], r, len(keys))
			}
		}
		if err := store.RemoveKey(keyFile, "k1"); err != nil {
			t.Fatal(err)
		}
		reloadAll()
		checkAll("after re-encryption and removing k1")
		for _, id := range ids {
			for _, k := range keys {
				if _, err := tc.nodes[id].Store().Get("default", []byte(k)); err != nil {
					t.Errorf("%s: %v", id, err)
				}
			}
		}

		// What repair writes is sealed too: a key only east-1 holds reaches
		// west-1 by repair, under west-1's active key (re-encryption then
		// finds nothing to do there; a value repair wrote unsealed would be
		// counted under "").
		if _, _, err := tc.nodes["east-1"].Store().Update("default", []byte("repaired"), func(cur *version.Object) (*version.Object, error) {
			return cur.Update(cur.Context(), "test-actor", version.Write{Value: []byte("by repair")}), nil
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := tc.client.Repair(ctx(t), nil, nil); err != nil {
			t.Fatal(err)
		}
		obj, err := tc.nodes["west-1"].Store().Get("default", []byte("repaired"))
		if err != nil || len(obj.Values()) != 1 || string(obj.Values()[0]) != "by repair" {
			t.Fatalf("west-1 after repair: %v, %v", obj, err)
		}
		res, err = tc.client.Reencrypt(ctx(t), true)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Nodes {
			if r.Error != "" || r.Rewritten != 0 || r.Current != int64(len(keys)+2) {
				t.Errorf("reencrypt of %s after repair: %+v; want %d values, all current", r.Node, r, len(keys)+2)
			}
		}
	})
}

package node_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/node"
)

// TestGossipAloneDoesNotPlaceAMemberOnTheRing is the attack of the security
// issue: a process that holds the gossip key but no node certificate joins
// gossip as a Meridian node (east-9, announcing a QUIC address where
// nothing with a certificate for east-9 answers). It must never be placed
// on the ring: no key lists it as a replica, status shows it unverified,
// writes neither go to it nor leave hints for it.
func TestGossipAloneDoesNotPlaceAMemberOnTheRing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The cluster's gossip is encrypted, and the rogue holds the key.
		gossipKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
		tc := startCluster(t, clusterOpts{regions: []string{"east"}, tweak: func(c *node.Config) {
			c.GossipKeys, c.InsecureGossip = []string{gossipKey}, false
		}})
		cfg := tc.config("east-1")

		keys := make([][]byte, len(cfg.GossipKeys))
		for i, k := range cfg.GossipKeys {
			var err error
			if keys[i], err = base64.StdEncoding.DecodeString(k); err != nil {
				t.Fatal(err)
			}
		}
		kr, err := memberlist.NewKeyring(keys, keys[0])
		if err != nil {
			t.Fatal(err)
		}
		// Where east-9 claims to serve QUIC: a UDP socket that never answers.
		sink := tc.endpoint("east")
		defer sink.Close()
		// The rogue gossips from the sink's host.
		host := sink.LocalAddr().(*net.UDPAddr).AddrPort().Addr()
		gt, err := tc.sim.Net.GossipTransport(netip.AddrPortFrom(host, 7946))
		if err != nil {
			t.Fatal(err)
		}
		ml := memberlist.DefaultLocalConfig()
		ml.Transport = gt
		ml.BindAddr, ml.BindPort, ml.AdvertiseAddr, ml.AdvertisePort = host.String(), 7946, host.String(), 7946
		ml.Keyring, ml.GossipVerifyIncoming, ml.GossipVerifyOutgoing = kr, true, true
		ml.Logger = log.New(io.Discard, "", 0)
		sc := serf.DefaultConfig()
		sc.NodeName = "east-9"
		sc.Tags = map[string]string{"role": "meridian", "dc": "east", "rack": "rack9", "addr": sink.LocalAddr().String()}
		sc.MemberlistConfig = ml
		sc.Logger = ml.Logger
		rogue, err := serf.Create(sc)
		if err != nil {
			t.Fatal(err)
		}
		defer rogue.Shutdown()
		if _, err := rogue.Join(cfg.Seeds, true); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() error {
			for id, n := range tc.nodes {
				if len(n.Members()) != len(tc.nodes)+1 {
					return fmt.Errorf("%s sees %d members, want the rogue too", id, len(n.Members()))
				}
			}
			return nil
		})
		// Gossip saw it; the ring must not hold it.
		for i := range 64 {
			key := []byte(fmt.Sprintf("k-%d", i))
			res, err := tc.client.Ring(ctx(t), "default", key)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range append(res.Replicas["east"], res.Fallbacks["east"]...) {
				if id == "east-9" {
					t.Fatalf("key %s lists the unverified east-9 as a replica or fallback: %+v", key, res)
				}
			}
			if _, err := tc.client.Put(ctx(t), key, []byte("v"), &client.WriteOptions{Consistency: "ALL"}); err != nil {
				t.Fatal(err)
			}
		}
		st, err := tc.client.Status(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range st.Nodes {
			if s.ID == "east-9" {
				found = true
				if s.State != node.StateUnverified {
					t.Errorf("status shows east-9 %s, want %s", s.State, node.StateUnverified)
				}
			}
		}
		if !found {
			t.Error("status does not list east-9 at all; an operator should see the unverified member")
		}
		for id, n := range tc.nodes {
			if h := n.PendingHints()["east-9"]; h.Count > 0 {
				t.Errorf("%s keeps %d hints for the unverified east-9", id, h.Count)
			}
		}
	})
}

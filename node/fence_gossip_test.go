package node

import (
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/hashicorp/memberlist"
)

// Shutting the fenced gossip transport down returns while packets keep
// arriving and nobody reads them (memberlist shuts its transport down
// before it stops reading; serf may never have taken it). The forwarder
// used to stop first, leaving the inner transport's listener blocked on
// handing over a packet, and its Shutdown waiting for that listener: a
// node's Kill and Close hung.
func TestFencedGossipShutsDownUnderTraffic(t *testing.T) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: 0})
	if err != nil {
		t.Fatal(err)
	}
	g := newFencedGossip(nt, func(string) bool { return false })
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: nt.GetAutoBindPort()}
	conn, err := net.DialUDP("udp", nil, to)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Two packets nobody reads: the forwarder holds the first, the
	// listener blocks on the second.
	for i := range 2 {
		if _, err := conn.Write(fmt.Appendf(nil, "packet %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // and more while it shuts down
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				conn.Write([]byte("more"))
			}
		}
	}()
	// Until the listener has handed the forwarder a packet, Shutdown could
	// win the race without the bug showing: wait for one to be read.
	<-g.packets
	if err := g.Shutdown(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// dhcpClient does DORA exchanges for many MACs over one UDP socket bound
// to the client veth (port 68, SO_BINDTODEVICE). Every request has the
// broadcast flag, so every server answers to 255.255.255.255:68; replies
// are matched to their exchange by xid.
type dhcpClient struct {
	conn    net.PacketConn
	mu      sync.Mutex
	pending map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4
	// Retransmit schedule for each step; a step fails after the last.
	waits []time.Duration
}

func newDHCPClient(iface string) (*dhcpClient, error) {
	conn, err := server4.NewIPv4UDPConn(iface, &net.UDPAddr{Port: dhcpv4.ClientPort})
	if err != nil {
		return nil, fmt.Errorf("bind %s:68: %w", iface, err)
	}
	_ = conn.SetReadBuffer(4 << 20)
	c := &dhcpClient{conn: conn, pending: map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4{},
		waits: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}}
	go c.readLoop()
	return c, nil
}

func (c *dhcpClient) close() { _ = c.conn.Close() }

func (c *dhcpClient) readLoop() {
	buf := make([]byte, 4096)
	for {
		n, _, err := c.conn.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		m, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || m.OpCode != dhcpv4.OpcodeBootReply {
			continue
		}
		c.mu.Lock()
		ch := c.pending[m.TransactionID]
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default: // duplicate reply while the exchange is busy
			}
		}
	}
}

var bcast = &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}

// exchange sends req and waits for a reply of one of the wanted types,
// retransmitting per c.waits. It returns the reply and the retransmits.
func (c *dhcpClient) exchange(ctx context.Context, req *dhcpv4.DHCPv4, want ...dhcpv4.MessageType) (*dhcpv4.DHCPv4, int, error) {
	ch := make(chan *dhcpv4.DHCPv4, 4)
	c.mu.Lock()
	c.pending[req.TransactionID] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, req.TransactionID)
		c.mu.Unlock()
	}()
	pkt := req.ToBytes()
	for i, w := range c.waits {
		if _, err := c.conn.WriteTo(pkt, bcast); err != nil {
			return nil, i, err
		}
		t := time.NewTimer(w)
	wait:
		for {
			select {
			case m := <-ch:
				if slices.Contains(want, m.MessageType()) {
					t.Stop()
					return m, i, nil
				}
			case <-t.C:
				break wait
			case <-ctx.Done():
				t.Stop()
				return nil, i, ctx.Err()
			}
		}
	}
	return nil, len(c.waits) - 1, errTimeout
}

var errTimeout = errors.New("no reply")

func newXID() dhcpv4.TransactionID {
	var x dhcpv4.TransactionID
	_, _ = rand.Read(x[:])
	return x
}

// doraResult is one client's outcome.
type doraResult struct {
	ack     *dhcpv4.DHCPv4
	latency time.Duration
	nak     bool // the last attempt ended with a NAK
	naks    int  // NAKs over all attempts
	retx    int
	err     error
}

// maxNAKs is how many NAKs a client takes before it gives up; after each
// it restarts at DISCOVER (RFC 2131 §3.1 step 5), as real clients do.
const maxNAKs = 3

// dora runs DISCOVER/OFFER/REQUEST/ACK for mac with extra options mods,
// restarting after a NAK up to maxNAKs times. latency covers the restarts.
func (c *dhcpClient) dora(ctx context.Context, mac net.HardwareAddr, mods ...dhcpv4.Modifier) doraResult {
	t0 := time.Now()
	var naks, retx int
	for {
		r := c.dora1(ctx, mac, mods...)
		retx += r.retx
		if !r.nak {
			r.naks, r.retx = naks, retx
			r.latency = time.Since(t0)
			return r
		}
		naks++
		if naks >= maxNAKs || ctx.Err() != nil {
			r.naks, r.retx = naks, retx
			return r
		}
	}
}

// dora1 is one DORA attempt.
func (c *dhcpClient) dora1(ctx context.Context, mac net.HardwareAddr, mods ...dhcpv4.Modifier) doraResult {
	t0 := time.Now()
	base := append([]dhcpv4.Modifier{dhcpv4.WithBroadcast(true), dhcpv4.WithTransactionID(newXID())}, mods...)
	disc, err := dhcpv4.NewDiscovery(mac, base...)
	if err != nil {
		return doraResult{err: err}
	}
	offer, r1, err := c.exchange(ctx, disc, dhcpv4.MessageTypeOffer)
	if err != nil {
		return doraResult{err: fmt.Errorf("discover: %w", err), retx: r1}
	}
	req, err := dhcpv4.NewRequestFromOffer(offer, append([]dhcpv4.Modifier{dhcpv4.WithBroadcast(true)}, mods...)...)
	if err != nil {
		return doraResult{err: err}
	}
	ack, r2, err := c.exchange(ctx, req, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
	if err != nil {
		return doraResult{err: fmt.Errorf("request: %w", err), retx: r1 + r2}
	}
	if ack.MessageType() == dhcpv4.MessageTypeNak {
		return doraResult{nak: true, retx: r1 + r2, err: errors.New("NAK")}
	}
	return doraResult{ack: ack, latency: time.Since(t0), retx: r1 + r2}
}

// benchMAC is simulated client i's MAC (locally administered).
func benchMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0xbe, 0x00, byte(i >> 16), byte(i >> 8), byte(i)}
}

// dhcpLoadResult is what the dhcp-client subcommand prints.
type dhcpLoadResult struct {
	Clients   int      `json:"clients"`
	Acked     int      `json:"acked"`
	NAKs      int      `json:"naks"`
	NeverAck  int      `json:"never_acked"`
	Retx      int      `json:"retransmits"`
	WallSec   float64  `json:"wall_s"`
	PerSec    float64  `json:"dora_per_s"`
	P50ms     float64  `json:"p50_ms"`
	P99ms     float64  `json:"p99_ms"`
	FirstErrs []string `json:"first_errors,omitempty"`
}

// cmdDHCPClient is the bounded load generator: n distinct MACs, inflight
// DORAs at once, at most limit overall.
func cmdDHCPClient(args []string) error {
	fs := flag.NewFlagSet("dhcp-client", flag.ExitOnError)
	n := fs.Int("n", 512, "distinct MACs")
	inflight := fs.Int("inflight", 64, "DORAs in flight")
	limit := fs.Duration("limit", 60*time.Second, "overall time limit")
	_ = fs.Parse(args)

	c, err := newDHCPClient(clientIf)
	if err != nil {
		return err
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), *limit)
	defer cancel()

	res := make([]doraResult, *n)
	var next atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range *inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *n {
					return
				}
				res[i] = c.dora(ctx, benchMAC(i))
			}
		}()
	}
	wg.Wait()
	wall := time.Since(t0)

	out := dhcpLoadResult{Clients: *n, WallSec: wall.Seconds()}
	var lat []time.Duration
	for _, r := range res {
		out.Retx += r.retx
		out.NAKs += r.naks
		if r.ack != nil {
			out.Acked++
			lat = append(lat, r.latency)
		}
		if r.err != nil && len(out.FirstErrs) < 3 {
			out.FirstErrs = append(out.FirstErrs, r.err.Error())
		}
	}
	out.NeverAck = *n - out.Acked
	out.PerSec = float64(out.Acked) / wall.Seconds()
	slices.Sort(lat)
	out.P50ms = ms(pct(lat, 50))
	out.P99ms = ms(pct(lat, 99))
	return json.NewEncoder(os.Stdout).Encode(out)
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := (len(d)*p + 99) / 100
	return d[min(max(i-1, 0), len(d)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

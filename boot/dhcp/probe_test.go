package dhcp

import (
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func TestProbeDiscoverAsksForBroadcast(t *testing.T) {
	mac, err := randomLAAMAC()
	if err != nil {
		t.Fatal(err)
	}
	d, err := probeDiscover(mac)
	if err != nil {
		t.Fatal(err)
	}
	if !d.IsBroadcast() {
		t.Error("probe DHCPDISCOVER lacks the broadcast flag: unicast offers to its made-up MAC never reach us")
	}
	if d.MessageType() != dhcpv4.MessageTypeDiscover || d.ClientHWAddr.String() != mac.String() {
		t.Errorf("not a discover from %s:\n%s", mac, d.Summary())
	}
}

func TestOfferServer(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	disc, err := probeDiscover(mac)
	if err != nil {
		t.Fatal(err)
	}
	from := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 67}
	reply := func(mods ...dhcpv4.Modifier) []byte {
		r, err := dhcpv4.NewReplyFromRequest(disc, mods...)
		if err != nil {
			t.Fatal(err)
		}
		return r.ToBytes()
	}
	offer := dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer)
	cases := map[string]struct {
		pkt  []byte
		want string
	}{
		"offer with option 54": {reply(offer, dhcpv4.WithServerIP(net.IPv4(10, 0, 0, 7)),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 0, 2)))), "10.0.0.2"},
		"offer without 54: source": {reply(offer), "10.0.0.9"},
		"ack is not an offer":      {reply(dhcpv4.WithMessageType(dhcpv4.MessageTypeAck)), ""},
		"other transaction": {func() []byte {
			r, _ := dhcpv4.FromBytes(reply(offer))
			r.TransactionID[0]++
			return r.ToBytes()
		}(), ""},
		"our own discover": {disc.ToBytes(), ""},
		"garbage":          {[]byte{1, 2, 3}, ""},
	}
	for name, tc := range cases {
		got := offerServer(tc.pkt, from, disc.TransactionID)
		if (got == nil && tc.want != "") || (got != nil && got.String() != tc.want) {
			t.Errorf("%s: offerServer = %v, want %q", name, got, tc.want)
		}
	}
}

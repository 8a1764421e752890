package dhcp

import (
	"bytes"
	"net"
	"testing"
)

func TestRouterAdvertisementBytes(t *testing.T) {
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x01, 0x02, 0x03}
	got, err := routerAdvertisement(mac)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		134, 0, 0, 0, // type RA, code 0, checksum (kernel fills)
		0, 0, 0, 0, // cur hop limit unspecified, no M/O flags, router lifetime 0
		0, 0, 0, 0, // reachable time unspecified
		0, 0, 0, 0, // retrans timer unspecified
		1, 1, 0x52, 0x54, 0x00, 0x01, 0x02, 0x03, // source link-layer address
	}
	if !bytes.Equal(got, want) {
		t.Errorf("RA = % x\nwant % x", got, want)
	}
	if got, _ := routerAdvertisement(nil); len(got) != 16 {
		t.Errorf("RA without MAC is %d bytes, want 16", len(got))
	}
}

func TestRandomLAAMAC(t *testing.T) {
	for range 50 {
		mac, err := randomLAAMAC()
		if err != nil {
			t.Fatal(err)
		}
		if len(mac) != 6 || mac[0]&1 != 0 || mac[0]&2 == 0 {
			t.Fatalf("%s is not a unicast locally administered MAC", mac)
		}
	}
}

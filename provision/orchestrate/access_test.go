package orchestrate

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/nodeapi"
)

// TestAdmit: who may have a node's install files and post its callbacks
// (see access.go). n-04 (no BMC) has the planned address 10.1.0.104.
func TestAdmit(t *testing.T) {
	p, store := planAndStore(t)
	o := New(p, store, nil, secrets{}, Config{}, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	rec := func(ev events.Event) {
		t.Helper()
		ev.Node = "n-04"
		if ev.Percent == 0 {
			ev.Percent = -1
		}
		if _, err := store.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	admit := func(ip string, what nodeapi.Access) (bool, string) {
		t.Helper()
		ok, why, err := o.Admit(ctx, "n-04", netip.MustParseAddr(ip), what)
		if err != nil {
			t.Fatal(err)
		}
		return ok, why
	}
	want := func(step, ip string, what nodeapi.Access, wantOK bool, wantWhy string) {
		t.Helper()
		ok, why := admit(ip, what)
		if ok != wantOK || !strings.Contains(why, wantWhy) {
			t.Errorf("%s: %s %s: %v %q, want %v %q", step, ip, what, ok, why, wantOK, wantWhy)
		}
	}
	const planned, site, stranger = "10.1.0.104", "10.1.0.177", "10.1.0.66"
	// Before anything happened: its planned address only.
	want("no events", planned, nodeapi.AccessConfig, true, "")
	want("no events", site, nodeapi.AccessConfig, false, "not an address n-04 named in its DHCP exchange")
	// A manual power-on starts an attempt; the site's DHCP server gives the
	// node 10.1.0.177 (racklift sees its DHCPREQUEST in proxy mode).
	rec(events.Event{Source: events.SourceOrchestrator, Type: "orchestrator.manual-power", Phase: events.PhasePoweringOn})
	rec(events.Event{Source: events.SourceDHCP, Type: "dhcp.ignore", Attrs: map[string]string{"client_ip": site}})
	want("after its DHCP", site, nodeapi.AccessConfig, true, "")
	want("after its DHCP", stranger, nodeapi.AccessConfig, false, "not an address")
	want("after its DHCP", stranger, nodeapi.AccessCallback, false, "not an address")
	want("after its DHCP", stranger, nodeapi.AccessMedia, false, "not an address")
	// A spoofer that named another address for the same MAC and got the
	// first file is the receiver of this attempt: the node's own fetch is
	// refused (loudly), and so is any third address.
	rec(events.Event{Source: events.SourceDHCP, Type: "dhcp.ignore", Attrs: map[string]string{"client_ip": stranger}})
	rec(events.Event{Source: events.SourceHTTP, Type: "http.config", Attrs: map[string]string{"client": stranger}})
	want("receiver", stranger, nodeapi.AccessConfig, true, "")
	want("receiver", site, nodeapi.AccessConfig, false, "already went to "+stranger)
	want("receiver", site, nodeapi.AccessCallback, true, "") // callbacks need the token as well
	want("receiver", planned, nodeapi.AccessConfig, true, "")
	// A new attempt forgets the old addresses and receiver.
	rec(events.Event{Source: events.SourceOrchestrator, Type: "orchestrator.retry", Phase: events.PhasePlanned})
	want("new attempt", stranger, nodeapi.AccessConfig, false, "not an address")
	want("new attempt", site, nodeapi.AccessConfig, false, "not an address")
	rec(events.Event{Source: events.SourceDHCP, Type: "dhcp.ack", Attrs: map[string]string{"ip": site}})
	want("leased by racklift", site, nodeapi.AccessConfig, true, "")
	// Ready closes the window, even for the planned address.
	rec(events.Event{Source: events.SourceInstaller, Type: "install.ready", Phase: events.PhaseReady})
	want("ready", planned, nodeapi.AccessConfig, false, "install window is closed")
	want("ready", site, nodeapi.AccessCallback, false, "install window is closed")
	if b, _ := o.BootAction(ctx, "n-04"); b != nodeapi.BootLocal {
		t.Errorf("ready node boots %s, want local", b)
	}
	// A failed node gets no files and holds at boot until retried.
	rec(events.Event{Source: events.SourceOrchestrator, Type: "orchestrator.reinstall", Phase: events.PhasePlanned})
	rec(events.Event{Source: events.SourceOrchestrator, Type: "orchestrator.failed", Phase: events.PhaseFailed})
	want("failed", planned, nodeapi.AccessConfig, false, "waits for the operator")
	if b, _ := o.BootAction(ctx, "n-04"); b != nodeapi.BootHold {
		t.Errorf("failed node boots %s, want hold", b)
	}
}

package orchestrate

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

// The provisioning LAN is hostile: every MAC is broadcast in DHCP, so a
// MAC (or a boot script fetch) proves nothing. The orchestrator decides
// who may have a node's install files and post its callbacks, from what
// racklift itself saw, and the boot server only asks:
//
//   - The install window: a node's secret-bearing files are served and its
//     callbacks taken only while it installs (from planned or powered on
//     until ready). A ready, verified or failed node gets nothing.
//   - The address: the client must be one of the node's planned addresses
//     (its installed system, or the address racklift leases it in
//     authoritative mode), or an address the node's own MAC named in its
//     DHCP exchange during this attempt (what the site's DHCP server gave
//     it in proxy mode: the option 50 of its DHCPREQUEST, its ciaddr, the
//     source of its port-4011 request). A boot script fetch binds nothing.
//   - One receiver per attempt: once a secret-bearing file of an attempt
//     went to one such address, no other address (that is not planned)
//     gets one in that attempt. A host that spoofs the node's MAC must
//     beat the node to its first file, and then the node's own fetch is
//     refused and the install fails loudly (a security event names both
//     addresses).
//   - Callbacks also need the node's token, which is new for every attempt
//     and rotated once the node is ready; and nothing a node sends moves
//     an installed node back (the event store's state machine).

// Access answers the boot server's two questions, from the plan and the
// event store alone: what a node that asks for its boot script gets
// (BootAction) and whether a client may act for a node (Admit). The
// Orchestrator embeds one; it is also usable on its own.
type Access struct {
	plan  *plan.Plan
	store NodeReader
}

// NewAccess returns the boot policy for plan p over the event store.
func NewAccess(p *plan.Plan, store NodeReader) *Access { return &Access{plan: p, store: store} }

// Admit decides whether a client at ip may do what on node's behalf. It
// returns the reason when not.
func (o *Access) Admit(ctx context.Context, node string, ip netip.Addr, what nodeapi.Access) (bool, string, error) {
	n, ok := o.plan.NodeByName(node)
	if !ok {
		return false, "not a plan node", nil
	}
	st, have, err := o.store.Node(ctx, node)
	if err != nil {
		return false, "", fmt.Errorf("node %s state: %w", node, err)
	}
	switch {
	case !have:
	case st.Phase == events.PhaseReady, st.Phase == events.PhaseVerified, st.Phase == events.PhaseMismatch:
		return false, fmt.Sprintf("%s is %s: its install window is closed (racklift reinstall opens a new one)", node, st.Phase), nil
	case st.Phase == events.PhaseFailed && what != nodeapi.AccessCallback:
		return false, fmt.Sprintf("%s failed: it waits for the operator's retry", node), nil
	}
	ip = ip.Unmap()
	for _, a := range n.Addresses {
		if a.Addr == ip {
			return true, "", nil
		}
	}
	v, err := o.attempt(ctx, node)
	if err != nil {
		return false, "", err
	}
	if !v.seen[ip] {
		return false, fmt.Sprintf("%s is not an address %s named in its DHCP exchange during this install", ip, node), nil
	}
	if what == nodeapi.AccessConfig && v.receiver.IsValid() && v.receiver != ip {
		return false, fmt.Sprintf("%s's install files of this attempt already went to %s", node, v.receiver), nil
	}
	return true, "", nil
}

// attemptView is what the events of a node's current install attempt say
// about its addresses.
type attemptView struct {
	// seen: addresses the node's MAC named in its DHCP exchange (or that
	// racklift leased it) during the attempt.
	seen map[netip.Addr]bool
	// receiver is the first address that is not planned that got a
	// secret-bearing file in the attempt (invalid if none).
	receiver netip.Addr
}

// attemptEvents bounds how far back a node's events are read for its
// current attempt (an attempt has tens of events; a chatty installer a
// few hundred).
const attemptEvents = 2000

// attempt reads the node's events back to the start of its current
// attempt: the latest event that put it in PhasePlanned (reinstall, retry,
// a new run) or PhasePoweringOn (the orchestrator's power-on, or the
// manual power-on note).
func (o *Access) attempt(ctx context.Context, node string) (attemptView, error) {
	evs, err := o.store.NodeEvents(ctx, node, attemptEvents)
	if err != nil {
		return attemptView{}, fmt.Errorf("node %s events: %w", node, err)
	}
	v := attemptView{seen: map[netip.Addr]bool{}}
	planned := map[netip.Addr]bool{}
	if n, ok := o.plan.NodeByName(node); ok {
		for _, a := range n.Addresses {
			planned[a.Addr] = true
		}
	}
	for i := len(evs) - 1; i >= 0; i-- { // newest first
		ev := evs[i]
		switch {
		case ev.Source == events.SourceDHCP:
			for _, k := range []string{"client_ip", "ip"} {
				if a, err := netip.ParseAddr(ev.Attrs[k]); err == nil && (k == "client_ip" || ev.Type == "dhcp.offer" || ev.Type == "dhcp.ack") {
					v.seen[a.Unmap()] = true
				}
			}
		case ev.Source == events.SourceHTTP && (ev.Type == eventConfigServed || ev.Type == eventInstructionsServed):
			if a, err := netip.ParseAddr(ev.Attrs["client"]); err == nil && !planned[a.Unmap()] {
				v.receiver = a.Unmap() // scanning backwards: the first one of the attempt wins
			}
		}
		if ev.Phase == events.PhasePlanned || ev.Phase == events.PhasePoweringOn {
			break
		}
	}
	return v, nil
}

// Event types of the boot server that mark a secret-bearing file served.
const (
	eventConfigServed       = "http.config"
	eventInstructionsServed = "http.instructions"
)

// BootAction tells the boot server what a node that asks for its boot
// script gets: installed nodes boot from their disk (the reinstall guard),
// failed nodes wait for the operator, every other node installs.
func (o *Access) BootAction(ctx context.Context, node string) (nodeapi.Boot, error) {
	st, ok, err := o.store.Node(ctx, node)
	if err != nil {
		return nodeapi.BootLocal, fmt.Errorf("node %s state: %w", node, err)
	}
	switch {
	case !ok:
		return nodeapi.BootInstall, nil
	case st.Phase.Installed():
		return nodeapi.BootLocal, nil
	case st.Phase == events.PhaseFailed:
		return nodeapi.BootHold, nil
	}
	return nodeapi.BootInstall, nil
}

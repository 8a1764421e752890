package orchestrate

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/verify"
)

// FactsReader reads what a node last reported about itself (the JSON of a
// nodeapi.Facts), kept by the boot server from its ready callback.
type FactsReader interface {
	Facts(ctx context.Context, node string) ([]byte, time.Time, bool, error)
}

// Event types of the verification.
const (
	eventVerified = "verify.ok"
	eventMismatch = "verify.mismatch"
)

// verify compares a ready node's reported facts with its plan and records
// the outcome: verified (every check matches: the node is done), or
// mismatch with one reason per difference (the node is installed and
// boots from its disk, and the engineer fixes the cabling, the switch or
// the plan, then reinstalls or accepts it). A node that reported no facts
// cannot be verified: that is a mismatch too, saying so.
func (o *Orchestrator) verify(ctx context.Context, node string) {
	n, ok := o.plan.NodeByName(node)
	if !ok {
		return
	}
	var f *nodeapi.Facts
	raw, _, have, err := o.store.Facts(ctx, node)
	if err != nil {
		o.log.Error("read facts", "node", node, "err", err)
		return
	}
	if have {
		f = &nodeapi.Facts{}
		if err := json.Unmarshal(raw, f); err != nil {
			f = nil
			o.log.Warn("facts are not a facts document", "node", node, "err", err)
		}
	}
	if f == nil {
		o.record(ctx, events.Event{Node: node, MAC: n.MAC, Type: eventMismatch, Phase: events.PhaseMismatch,
			Detail: "no facts: the node's first boot did not report its state (racklift's facts script did not run), so it cannot be verified",
			Attrs:  map[string]string{"differences": "1"}})
		return
	}
	res := verify.Compare(o.plan, n, f)
	if res.OK() {
		o.record(ctx, events.Event{Node: node, MAC: n.MAC, Type: eventVerified, Phase: events.PhaseVerified,
			Detail: fmt.Sprintf("matches the plan: %d checks (hostname, interfaces, bonds, VLANs, MTUs, addresses, routes, DNS, disks)", res.Checked),
			Attrs:  map[string]string{"checks": strconv.Itoa(res.Checked)}})
		return
	}
	attrs := map[string]string{"checks": strconv.Itoa(res.Checked), "differences": strconv.Itoa(len(res.Mismatches))}
	var reasons []string
	for i, m := range res.Mismatches {
		reasons = append(reasons, m.Reason)
		if i < 20 {
			attrs[fmt.Sprintf("diff_%02d", i+1)] = m.Reason
		}
	}
	o.log.Warn("node differs from the plan", "node", node, "differences", strings.Join(reasons, "; "))
	o.record(ctx, events.Event{Node: node, MAC: n.MAC, Type: eventMismatch, Phase: events.PhaseMismatch, Detail: res.Summary(), Attrs: attrs})
}

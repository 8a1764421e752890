package handoff

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

// PhaseVerified is the phase of a node whose installed state racklift has
// checked against the plan (after ready). It is declared here until
// provision/events has it.
const PhaseVerified = events.PhaseVerified

// NodeSource is where the hand-off reads each node's progress and its
// verification facts: the event store (provision/events.Store, opened
// read-only beside a running `racklift serve`). Both methods report
// ok=false, and no error, for a node the store knows nothing about.
type NodeSource interface {
	Node(ctx context.Context, name string) (events.NodeState, bool, error)
	Facts(ctx context.Context, node string) (*nodeapi.Facts, bool, error)
}

// NodeReadiness says whether one node can be handed off, and why not.
type NodeReadiness struct {
	Name     string       `json:"name"`
	Phase    events.Phase `json:"phase"`
	Verified bool         `json:"verified"`
	// Reason is empty for verified nodes.
	Reason   string `json:"reason,omitempty"`
	HasFacts bool   `json:"has_facts"`
}

// Readiness is the hand-off state of the whole plan.
type Readiness struct {
	// Ready is true when every node of the plan is verified.
	Ready    bool            `json:"ready"`
	Verified int             `json:"verified"`
	Total    int             `json:"total"`
	Nodes    []NodeReadiness `json:"nodes"`
}

// Gather reads every plan node's state and facts from src. It returns the
// Build inputs and the readiness report.
func Gather(ctx context.Context, p *plan.Plan, src NodeSource) (map[string]NodeInput, Readiness, error) {
	in := make(map[string]NodeInput, len(p.Nodes))
	rd := Readiness{Total: len(p.Nodes)}
	for _, n := range p.Nodes {
		st, ok, err := src.Node(ctx, n.Name)
		if err != nil {
			return nil, Readiness{}, fmt.Errorf("handoff: node %s: %w", n.Name, err)
		}
		f, fok, err := src.Facts(ctx, n.Name)
		if err != nil {
			return nil, Readiness{}, fmt.Errorf("handoff: facts of %s: %w", n.Name, err)
		}
		if !fok {
			f = nil
		}
		ni := NodeInput{Facts: f}
		r := NodeReadiness{Name: n.Name, Phase: st.Phase, HasFacts: f != nil}
		switch {
		case !ok || st.Phase == events.PhaseNone:
			ni.Reason = "no event seen yet"
		case st.Phase == PhaseVerified:
			ni.Verified = true
		case st.Phase == events.PhaseFailed:
			ni.Reason = "failed: " + st.FailedReason
		case st.Phase == events.PhaseReady:
			ni.Reason = "ready, not verified yet"
		default:
			ni.Reason = "phase " + string(st.Phase)
		}
		r.Verified, r.Reason = ni.Verified, ni.Reason
		if ni.Verified {
			rd.Verified++
		}
		in[n.Name] = ni
		rd.Nodes = append(rd.Nodes, r)
	}
	rd.Ready = rd.Verified == rd.Total
	return in, rd, nil
}

// Service builds hand-offs from a live node source: what the CLI and the
// admin API use.
type Service struct {
	Plan *plan.Plan
	// Source is the event store; nil means racklift cannot read node
	// states (every node then counts as not verified).
	Source NodeSource
	// Key is the site's deployment key.
	Key DeployKey
}

// gather reads the inputs, or marks every node unknown without a Source.
func (s *Service) gather(ctx context.Context) (map[string]NodeInput, Readiness, error) {
	if s.Source != nil {
		return Gather(ctx, s.Plan, s.Source)
	}
	in := map[string]NodeInput{}
	rd := Readiness{Total: len(s.Plan.Nodes)}
	for _, n := range s.Plan.Nodes {
		in[n.Name] = NodeInput{Reason: "node states cannot be read (no event store)"}
		rd.Nodes = append(rd.Nodes, NodeReadiness{Name: n.Name, Reason: in[n.Name].Reason})
	}
	return in, rd, nil
}

// Readiness says which nodes are verified and why the others are not.
func (s *Service) Readiness(ctx context.Context) (Readiness, error) {
	_, rd, err := s.gather(ctx)
	return rd, err
}

// Bundle builds the hand-off of the verified nodes (all nodes with
// allowUnverified).
func (s *Service) Bundle(ctx context.Context, allowUnverified bool) (*Bundle, error) {
	in, _, err := s.gather(ctx)
	if err != nil {
		return nil, err
	}
	return Build(s.Plan, Inputs{Nodes: in, AllowUnverified: allowUnverified, DeployKey: s.Key})
}

// RawStore is the event store as it keeps facts: the JSON the node sent.
type RawStore interface {
	Node(ctx context.Context, name string) (events.NodeState, bool, error)
	Facts(ctx context.Context, node string) ([]byte, time.Time, bool, error)
}

// StoreSource reads node states and facts from the event store.
type StoreSource struct{ Store RawStore }

// Node implements NodeSource.
func (s StoreSource) Node(ctx context.Context, name string) (events.NodeState, bool, error) {
	return s.Store.Node(ctx, name)
}

// Facts implements NodeSource: the node's last facts, decoded.
func (s StoreSource) Facts(ctx context.Context, node string) (*nodeapi.Facts, bool, error) {
	raw, _, ok, err := s.Store.Facts(ctx, node)
	if err != nil || !ok {
		return nil, false, err
	}
	var f nodeapi.Facts
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, false, fmt.Errorf("facts of %s: %w", node, err)
	}
	return &f, true, nil
}

package events

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// NodeState is a node's current progress, derived from its events and kept
// in the nodes table by the same transaction that stores each event.
type NodeState struct {
	// Name is the plan node name.
	Name string `json:"name"`
	// Phase is the furthest phase of the node's current attempt: the phase
	// of its latest event that had one, except that boot-service events of
	// an earlier phase (see lagging) do not move it back. PhaseNone if it
	// has only had PhaseNone events.
	Phase Phase `json:"phase"`
	// Percent is the Percent of that event (-1 if unknown).
	Percent int `json:"percent"`
	// Since is when the node entered Phase (zero for PhaseNone). Repeated
	// events of the same phase do not move it.
	Since time.Time `json:"since"`
	// LastEvent is the node's latest event of any kind.
	LastEvent Event `json:"last_event"`
	// FailedReason is the Detail (or, if empty, the Type) of the event that
	// put the node in PhaseFailed, or in PhaseMismatch (the differences
	// from the plan); empty in every other phase.
	FailedReason string `json:"failed_reason,omitempty"`
	// Attempts counts install attempts. One starts each time the node
	// enters PhasePoweringOn, each time it leaves PhaseFailed, and when a
	// node with no attempt yet shows up in a boot phase (DHCP or later)
	// without going through PhasePoweringOn (powered on by hand).
	Attempts int `json:"attempts"`
	// Durations is the total time spent in each phase the node has been
	// in, over all attempts. The current phase counts up to the time of
	// the query.
	Durations map[Phase]time.Duration `json:"durations"`
}

// nodeRow is the stored part of a node's state that events change.
type nodeRow struct {
	exists   bool
	phase    Phase
	percent  int
	since    time.Time
	failed   string
	attempts int
}

// advance applies ev (whose Node is cur's node) to cur. It is pure: the
// caller stores the result. changed reports a phase change, which starts a
// new phase interval at next.since. The interval start is never before the
// current one, so durations stay non-negative when events arrive with
// out-of-order timestamps.
func advance(cur nodeRow, ev Event) (next nodeRow, changed bool) {
	next = cur
	next.exists = true
	switch {
	case ev.Phase == PhaseNone:
		return next, false
	case ev.Phase == cur.phase:
		next.percent = ev.Percent
		if ev.Phase == PhaseFailed || ev.Phase == PhaseMismatch {
			next.failed = failReason(ev)
		}
		return next, false
	case lagging(cur.phase, ev.Phase):
		return next, false
	case cur.phase.Installed() && ev.Source != SourceOrchestrator && (ev.Phase == PhaseFailed || phaseRank(ev.Phase) < phaseRank(cur.phase)):
		// An installed node leaves its install only when the orchestrator
		// says so (the operator's reinstall): an installer callback, a BMC
		// or a boot service can never send it back to install or fail it.
		return next, false
	}
	if startsAttempt(cur, ev.Phase) {
		next.attempts++
	}
	next.phase = ev.Phase
	next.percent = ev.Percent
	next.since = ev.At
	if cur.phase != PhaseNone && ev.At.Before(cur.since) {
		next.since = cur.since
	}
	next.failed = ""
	if ev.Phase == PhaseFailed || ev.Phase == PhaseMismatch {
		next.failed = failReason(ev)
	}
	return next, true
}

// lagging reports whether an event of phase p, arriving while the node is
// in cur, is an observation that lags behind rather than a step: a DHCP
// renewal or a boot-script fetch of a node that is already installed must
// not move it back (the reinstall guard reads this phase). Only steps that
// start a new attempt move a node back: planned (reinstall, retry) and the
// orchestrator's BMC check, BIOS baseline and power-on. Failed is left by
// any phase, and entered from any phase.
func lagging(cur, p Phase) bool {
	switch {
	case cur == PhaseNone, cur == PhaseFailed, p == PhaseFailed:
		return false
	case p == PhasePlanned, p == PhaseBMCChecked, p == PhaseBIOSOK, p == PhasePoweringOn:
		return false
	}
	return phaseRank(p) < phaseRank(cur)
}

// startsAttempt reports whether moving from cur to phase p starts a new
// install attempt (see NodeState.Attempts).
func startsAttempt(cur nodeRow, p Phase) bool {
	switch {
	case p == PhasePoweringOn, cur.phase == PhaseFailed:
		return true
	case cur.attempts == 0:
		return phaseRank(p) > phaseRank(PhasePoweringOn)
	default:
		return false
	}
}

// failReason is what NodeState.FailedReason shows for a failure event.
func failReason(ev Event) string {
	if ev.Detail != "" {
		return ev.Detail
	}
	return ev.Type
}

// nodeSelect reads nodes joined with their last event.
const nodeSelect = `SELECT n.name, n.phase, n.percent, n.phase_since, n.failed_reason, n.attempts, ` +
	prefixedEventColumns + ` FROM nodes n JOIN events e ON e.id = n.last_event_id`

// Nodes returns the state of every node that has had an event, by name.
func (s *Store) Nodes(ctx context.Context) ([]NodeState, error) {
	return s.readNodes(ctx, nodeSelect+` ORDER BY n.name`, `1`)
}

// Node returns one node's state; ok is false if the node has had no event.
func (s *Store) Node(ctx context.Context, name string) (ns NodeState, ok bool, err error) {
	nodes, err := s.readNodes(ctx, nodeSelect+` WHERE n.name = ?`, `node = ?`, name)
	if err != nil || len(nodes) == 0 {
		return NodeState{}, false, err
	}
	return nodes[0], true, nil
}

// readNodes runs a node query and the matching duration query (durWhere
// filters phase_times with the same args) in one read snapshot.
func (s *Store) readNodes(ctx context.Context, query, durWhere string, args ...any) ([]NodeState, error) {
	if s.closed() {
		return nil, ErrClosed
	}
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("read nodes: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	nodes, err := queryNodes(ctx, tx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	durs, err := queryDurations(ctx, tx, s.now(), durWhere, args...)
	if err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	for i := range nodes {
		nodes[i].Durations = durs[nodes[i].Name]
		if nodes[i].Durations == nil {
			nodes[i].Durations = map[Phase]time.Duration{}
		}
	}
	return nodes, nil
}

// queryNodes scans nodeSelect rows.
func queryNodes(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]NodeState, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var nodes []NodeState
	for rows.Next() {
		var (
			n     NodeState
			phase string
			since int64
			ev    eventScan
		)
		dst := append([]any{&n.Name, &phase, &n.Percent, &since, &n.FailedReason, &n.Attempts}, ev.dest()...)
		if err := rows.Scan(dst...); err != nil {
			return nil, err
		}
		n.Phase = Phase(phase)
		n.Since = fromNanos(since)
		if n.LastEvent, err = ev.event(); err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, rows.Err()
}

// queryDurations sums phase intervals per node and phase; open intervals
// count up to now.
func queryDurations(ctx context.Context, tx *sql.Tx, now time.Time, where string, args ...any) (map[string]map[Phase]time.Duration, error) {
	q := `SELECT node, phase, SUM(MAX(0, COALESCE(ended, ?) - started)) FROM phase_times WHERE ` +
		where + ` GROUP BY node, phase`
	rows, err := tx.QueryContext(ctx, q, append([]any{now.UnixNano()}, args...)...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	out := map[string]map[Phase]time.Duration{}
	for rows.Next() {
		var (
			node, phase string
			ns          int64
		)
		if err := rows.Scan(&node, &phase, &ns); err != nil {
			return nil, err
		}
		if out[node] == nil {
			out[node] = map[Phase]time.Duration{}
		}
		out[node][Phase(phase)] = time.Duration(ns)
	}
	return out, rows.Err()
}

// toNanos converts a time for storage; the zero time is stored as 0.
func toNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos converts a stored time; 0 means "not set".
func fromNanos(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

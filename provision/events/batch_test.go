package events

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestPlaceholders(t *testing.T) {
	tests := map[string]struct {
		rows, cols int
		want       string
	}{
		"one by one": {1, 1, "(?)"},
		"two by two": {2, 2, "(?, ?), (?, ?)"},
		"one by 3":   {1, 3, "(?, ?, ?)"},
	}
	for name, tc := range tests {
		if got := placeholders(tc.rows, tc.cols); got != tc.want {
			t.Errorf("%s: placeholders(%d, %d) = %q, want %q", name, tc.rows, tc.cols, got, tc.want)
		}
	}
}

func TestPlanNodes(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	cur := map[string]nodeRow{
		"old": {exists: true, phase: PhaseDHCP, since: at(0), percent: -1, attempts: 1},
	}
	evs := []Event{
		{ID: 10, At: at(5), Node: "old", Phase: PhaseIPXE, Percent: -1},
		{ID: 11, At: at(6), Node: "new", Phase: PhaseDHCP, Percent: -1},
		{ID: 12, At: at(7), Node: "old", Phase: PhaseKernel, Percent: -1, Detail: "vmlinuz"},
		{ID: 13, At: at(8)}, // no node
		{ID: 14, At: at(9), Node: "new", Detail: "tftp"},
	}
	plans, order := planNodes(cur, evs)
	if !reflect.DeepEqual(order, []string{"old", "new"}) {
		t.Errorf("order = %v", order)
	}
	wantOld := &nodePlan{
		row:         nodeRow{exists: true, phase: PhaseKernel, since: at(7), percent: -1, attempts: 1},
		lastID:      12,
		lastDetail:  "vmlinuz",
		closeStored: true,
		closeAt:     at(5),
		intervals:   []interval{{phase: PhaseIPXE, started: at(5), ended: at(7)}, {phase: PhaseKernel, started: at(7)}},
	}
	wantNew := &nodePlan{
		row:        nodeRow{exists: true, phase: PhaseDHCP, since: at(6), percent: -1, attempts: 1},
		lastID:     14,
		lastDetail: "tftp",
		intervals:  []interval{{phase: PhaseDHCP, started: at(6)}},
	}
	if !reflect.DeepEqual(plans["old"], wantOld) {
		t.Errorf("old = %+v\nwant  %+v", plans["old"], wantOld)
	}
	if !reflect.DeepEqual(plans["new"], wantNew) {
		t.Errorf("new = %+v\nwant  %+v", plans["new"], wantNew)
	}
}

// batchSequence moves several nodes through phases, with repeats,
// PhaseNone events, a failure and retry, and an out-of-order timestamp.
func batchSequence() []Event {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	var evs []Event
	add := func(s int, node string, p Phase, pct int, detail string) {
		evs = append(evs, Event{At: at(s), Node: node, Source: SourceOrchestrator, Type: "t", Phase: p, Percent: pct, Detail: detail})
	}
	add(0, "a", PhasePlanned, -1, "")
	add(1, "b", PhasePoweringOn, -1, "")
	add(2, "a", PhasePoweringOn, -1, "")
	add(3, "a", PhaseDHCP, -1, "")
	add(3, "", PhaseNone, -1, "unknown mac")
	add(4, "b", PhaseNone, -1, "tftp")
	add(5, "a", PhaseInstalling, 10, "")
	add(6, "a", PhaseInstalling, 60, "")
	add(7, "b", PhaseFailed, -1, "no boot")
	add(2, "a", PhaseInstalled, 100, "late clock")
	add(9, "b", PhasePoweringOn, -1, "retry")
	add(10, "c", PhaseNone, -1, "seen")
	return evs
}

// phaseRows dumps phase_times for comparison.
func phaseRows(t *testing.T, s *Store) [][4]any {
	t.Helper()
	rows, err := rawDB(t, s).Query(`SELECT node, phase, started, COALESCE(ended, -1) FROM phase_times ORDER BY node, started, id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][4]any
	for rows.Next() {
		var node, phase string
		var started, ended int64
		if err := rows.Scan(&node, &phase, &started, &ended); err != nil {
			t.Fatal(err)
		}
		out = append(out, [4]any{node, phase, started, ended})
	}
	return out
}

// bigSequence is a batch larger than rowsPerStmt over more nodes than
// rowsPerStmt, so every multi-row statement is chunked.
func bigSequence() []Event {
	phases := []Phase{PhasePoweringOn, PhaseDHCP, PhaseNone, PhaseIPXE, PhaseFailed, PhasePoweringOn, PhaseKernel}
	var evs []Event
	for i := range 3*rowsPerStmt + 7 {
		evs = append(evs, Event{
			At:     t0.Add(time.Duration(i) * time.Second),
			Node:   fmt.Sprintf("n%03d", (i*7)%(rowsPerStmt+9)),
			Source: SourceOrchestrator, Type: "t",
			Phase: phases[i%len(phases)], Percent: i % 101,
		})
	}
	return evs
}

func TestBatchMatchesOneByOne(t *testing.T) {
	tests := map[string]func() []Event{"mixed": batchSequence, "chunked": bigSequence}
	for name, seq := range tests {
		t.Run(name, func(t *testing.T) { testBatchMatchesOneByOne(t, seq()) })
	}
}

func testBatchMatchesOneByOne(t *testing.T, seq []Event) {
	serial, batched := newStore(t), newStore(t)
	now := func() time.Time { return t0.Add(time.Hour) }
	serial.now, batched.now = now, now
	for _, ev := range seq {
		record(t, serial, ev)
	}
	var reqs []*request
	for _, ev := range seq {
		ev, err := batched.normalize(ev)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, &request{ctx: t.Context(), ev: ev, done: make(chan result, 1)})
	}
	batched.commit(reqs) // the writer goroutine is idle; one transaction
	for i, r := range reqs {
		if res := <-r.done; res.err != nil || res.ev.ID != int64(i+1) {
			t.Fatalf("request %d: ID %d, err %v", i, res.ev.ID, res.err)
		}
	}
	want, err := serial.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got, err := batched.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("batched nodes:\n%+v\none by one:\n%+v", got, want)
	}
	if g, w := phaseRows(t, batched), phaseRows(t, serial); !reflect.DeepEqual(g, w) {
		t.Errorf("batched phase_times:\n%v\none by one:\n%v", g, w)
	}
	if g, w := allEvents(t, batched), allEvents(t, serial); !reflect.DeepEqual(g, w) {
		t.Error("batched events differ from events recorded one by one")
	}
}

func TestBatchSequenceStates(t *testing.T) {
	s := newStore(t)
	for _, ev := range batchSequence() {
		record(t, s, ev)
	}
	nodes, err := s.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 || nodes[0].Attempts != 1 || nodes[1].Attempts != 2 || nodes[0].Phase != PhaseInstalled ||
		nodes[1].Phase != PhasePoweringOn || nodes[2].Phase != PhaseNone {
		t.Errorf("unexpected node states: %+v", nodes)
	}
}

func TestBadEventDoesNotFailItsBatch(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	mk := func(ctx context.Context, ev Event) *request {
		return &request{ctx: ctx, ev: ev, done: make(chan result, 1)}
	}
	good := Event{At: t0, Source: SourceDHCP, Type: "ok", Node: "n", Phase: PhaseDHCP}
	bad := Event{At: t0, Source: SourceDHCP, Type: "bad", Percent: 500} // bypasses validate; CHECK fails
	reqs := []*request{mk(t.Context(), good), mk(t.Context(), bad), mk(ctx, good), mk(t.Context(), good)}
	s.commit(reqs)
	var ids []int64
	var errs []bool
	for _, r := range reqs {
		res := <-r.done
		ids = append(ids, res.ev.ID)
		errs = append(errs, res.err != nil)
	}
	if !reflect.DeepEqual(ids, []int64{1, 0, 0, 2}) || !reflect.DeepEqual(errs, []bool{false, true, true, false}) {
		t.Errorf("IDs %v errors %v; want [1 0 0 2] [false true true false]", ids, errs)
	}
	assertNodesConsistent(t, s)
}

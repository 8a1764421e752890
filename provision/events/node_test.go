package events

import (
	"reflect"
	"testing"
	"time"
)

func TestAdvance(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tests := map[string]struct {
		cur         nodeRow
		ev          Event
		want        nodeRow
		wantChanged bool
	}{
		"first event without phase": {
			cur:  nodeRow{percent: -1},
			ev:   Event{At: at(1), Type: "dhcp.ignore"},
			want: nodeRow{exists: true, percent: -1},
		},
		"first phase": {
			cur:         nodeRow{percent: -1},
			ev:          Event{At: at(1), Phase: PhasePlanned, Percent: -1},
			want:        nodeRow{exists: true, phase: PhasePlanned, percent: -1, since: at(1)},
			wantChanged: true,
		},
		"power on starts an attempt": {
			cur:         nodeRow{exists: true, phase: PhaseBIOSOK, since: at(1), percent: -1},
			ev:          Event{At: at(5), Phase: PhasePoweringOn, Percent: -1},
			want:        nodeRow{exists: true, phase: PhasePoweringOn, percent: -1, since: at(5), attempts: 1},
			wantChanged: true,
		},
		"hand-powered node starts an attempt at dhcp": {
			cur:         nodeRow{exists: true, phase: PhasePlanned, since: at(1), percent: -1},
			ev:          Event{At: at(5), Phase: PhaseDHCP, Percent: -1},
			want:        nodeRow{exists: true, phase: PhaseDHCP, percent: -1, since: at(5), attempts: 1},
			wantChanged: true,
		},
		"dhcp after power on is the same attempt": {
			cur:         nodeRow{exists: true, phase: PhasePoweringOn, since: at(1), percent: -1, attempts: 1},
			ev:          Event{At: at(5), Phase: PhaseDHCP, Percent: -1},
			want:        nodeRow{exists: true, phase: PhaseDHCP, percent: -1, since: at(5), attempts: 1},
			wantChanged: true,
		},
		"same phase updates percent only": {
			cur:  nodeRow{exists: true, phase: PhaseInstalling, since: at(1), percent: 10, attempts: 1},
			ev:   Event{At: at(9), Phase: PhaseInstalling, Percent: 55},
			want: nodeRow{exists: true, phase: PhaseInstalling, since: at(1), percent: 55, attempts: 1},
		},
		"phase none changes nothing": {
			cur:  nodeRow{exists: true, phase: PhaseInstalling, since: at(1), percent: 10, attempts: 1},
			ev:   Event{At: at(9), Percent: 99, Detail: "tftp block"},
			want: nodeRow{exists: true, phase: PhaseInstalling, since: at(1), percent: 10, attempts: 1},
		},
		"failure records the reason": {
			cur:         nodeRow{exists: true, phase: PhaseInstalling, since: at(1), percent: 10, attempts: 1},
			ev:          Event{At: at(9), Phase: PhaseFailed, Percent: -1, Type: "install.failed", Detail: "no disk sdb"},
			want:        nodeRow{exists: true, phase: PhaseFailed, since: at(9), percent: -1, attempts: 1, failed: "no disk sdb"},
			wantChanged: true,
		},
		"failure without detail uses the type": {
			cur:         nodeRow{exists: true, phase: PhaseKernel, since: at(1), attempts: 1},
			ev:          Event{At: at(9), Phase: PhaseFailed, Percent: -1, Type: "bmc.timeout"},
			want:        nodeRow{exists: true, phase: PhaseFailed, since: at(9), percent: -1, attempts: 1, failed: "bmc.timeout"},
			wantChanged: true,
		},
		"second failure event updates the reason": {
			cur:  nodeRow{exists: true, phase: PhaseFailed, since: at(9), percent: -1, attempts: 1, failed: "a"},
			ev:   Event{At: at(10), Phase: PhaseFailed, Percent: -1, Detail: "b"},
			want: nodeRow{exists: true, phase: PhaseFailed, since: at(9), percent: -1, attempts: 1, failed: "b"},
		},
		"leaving failure starts an attempt and clears the reason": {
			cur:         nodeRow{exists: true, phase: PhaseFailed, since: at(9), percent: -1, attempts: 1, failed: "a"},
			ev:          Event{At: at(20), Phase: PhasePoweringOn, Percent: -1},
			want:        nodeRow{exists: true, phase: PhasePoweringOn, since: at(20), percent: -1, attempts: 2},
			wantChanged: true,
		},
		"late timestamp never moves since backwards": {
			cur:         nodeRow{exists: true, phase: PhaseDHCP, since: at(10), percent: -1, attempts: 1},
			ev:          Event{At: at(3), Phase: PhaseIPXE, Percent: -1},
			want:        nodeRow{exists: true, phase: PhaseIPXE, since: at(10), percent: -1, attempts: 1},
			wantChanged: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, changed := advance(tc.cur, tc.ev)
			if !reflect.DeepEqual(got, tc.want) || changed != tc.wantChanged {
				t.Errorf("advance = %+v, %v\nwant      %+v, %v", got, changed, tc.want, tc.wantChanged)
			}
		})
	}
}

func TestPhaseAccounting(t *testing.T) {
	s := newStore(t)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	s.now = func() time.Time { return at(60) }
	steps := []Event{
		{At: at(0), Phase: PhasePlanned, Type: "plan.loaded"},
		{At: at(10), Phase: PhasePoweringOn, Type: "bmc.power"},
		{At: at(15), Phase: PhaseDHCP, Type: "dhcp.offer", Source: SourceDHCP},
		{At: at(16), Type: "tftp.done", Source: SourceTFTP, Percent: -1},
		{At: at(20), Phase: PhaseInstalling, Type: "install.progress", Percent: 50},
		{At: at(25), Phase: PhaseInstalling, Type: "install.progress", Percent: 80},
		{At: at(40), Phase: PhaseFailed, Type: "install.failed", Detail: "disk sdb missing", Percent: -1},
		{At: at(50), Phase: PhasePoweringOn, Type: "bmc.power", Percent: -1},
	}
	var last Event
	for _, ev := range steps {
		ev.Node = "cs-compute-0020"
		if ev.Source == "" {
			ev.Source = SourceOrchestrator
		}
		last = record(t, s, ev)
	}
	record(t, s, Event{At: at(55), Node: "other", Source: SourceDHCP, Type: "dhcp.offer", Phase: PhaseDHCP})

	n, ok, err := s.Node(t.Context(), "cs-compute-0020")
	if err != nil || !ok {
		t.Fatalf("Node = %v, %v", ok, err)
	}
	want := NodeState{
		Name:      "cs-compute-0020",
		Phase:     PhasePoweringOn,
		Percent:   -1,
		Since:     at(50),
		LastEvent: last,
		Attempts:  2,
		Durations: map[Phase]time.Duration{
			PhasePlanned:    10 * time.Second,
			PhasePoweringOn: 5*time.Second + 10*time.Second, // the open interval counts up to now (60)
			PhaseDHCP:       5 * time.Second,
			PhaseInstalling: 20 * time.Second,
			PhaseFailed:     10 * time.Second,
		},
	}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("Node =\n%+v\nwant\n%+v", n, want)
	}

	// Exactly one interval, the current phase's, is open.
	var open int
	if err := rawDB(t, s).QueryRow(`SELECT COUNT(*) FROM phase_times WHERE node = ? AND ended IS NULL`, n.Name).Scan(&open); err != nil || open != 1 {
		t.Errorf("open phase intervals = %d, %v; want 1", open, err)
	}

	nodes, err := s.Nodes(t.Context())
	if err != nil || len(nodes) != 2 || nodes[0].Name != "cs-compute-0020" || nodes[1].Name != "other" {
		t.Fatalf("Nodes = %+v, %v", nodes, err)
	}
	if !reflect.DeepEqual(nodes[0], want) {
		t.Errorf("Nodes()[0] differs from Node()")
	}
	if d := nodes[1].Durations[PhaseDHCP]; d != 5*time.Second || nodes[1].Attempts != 1 {
		t.Errorf("other: dhcp %v attempts %d, want 5s, 1", d, nodes[1].Attempts)
	}
}

func TestFailedNodeShowsReason(t *testing.T) {
	s := newStore(t)
	record(t, s, Event{Node: "n", Source: SourceBMC, Type: "bmc.power", Phase: PhasePoweringOn})
	record(t, s, Event{Node: "n", Source: SourceBMC, Type: "bmc.auth", Phase: PhaseFailed, Detail: "BMC refused credentials"})
	n, _, err := s.Node(t.Context(), "n")
	if err != nil || n.Phase != PhaseFailed || n.FailedReason != "BMC refused credentials" {
		t.Errorf("Node = %+v, %v", n, err)
	}
}

func TestNodeWithoutPhase(t *testing.T) {
	s := newStore(t)
	ev := record(t, s, Event{Node: "n", Source: SourceDHCP, Type: "dhcp.ignore", Detail: "no PXE options"})
	n, ok, err := s.Node(t.Context(), "n")
	if err != nil || !ok {
		t.Fatalf("Node = %v, %v", ok, err)
	}
	want := NodeState{Name: "n", Percent: -1, LastEvent: ev, Durations: map[Phase]time.Duration{}}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("Node = %+v, want %+v", n, want)
	}
}

// TestLaggingObservationsDoNotMoveBack: a node that is installed and
// PXE-boots again (DHCP, boot script) stays installed; nothing but the
// orchestrator (the operator's reinstall) moves an installed node back or
// fails it; a reinstall (planned) or the orchestrator's power-on of a node
// that is not installed starts over; a failed node moves on.
func TestLaggingObservationsDoNotMoveBack(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cur := nodeRow{}
	steps := []struct {
		p    Phase
		src  Source
		want Phase
	}{
		{PhasePoweringOn, SourceBMC, PhasePoweringOn},
		{PhaseDHCP, SourceDHCP, PhaseDHCP},
		{PhaseInstalling, SourceInstaller, PhaseInstalling},
		{PhaseInstalled, SourceInstaller, PhaseInstalled},
		{PhaseDHCP, SourceDHCP, PhaseInstalled}, // reboot: DHCP renewal lags behind
		{PhaseIPXE, SourceHTTP, PhaseInstalled}, // boot script fetch lags behind
		{PhaseFirstBoot, SourceHTTP, PhaseFirstBoot},
		{PhaseKernel, SourceHTTP, PhaseFirstBoot},
		{PhaseReady, SourceInstaller, PhaseReady},
		{PhaseFailed, SourceInstaller, PhaseReady},     // an error callback cannot fail an installed node
		{PhasePlanned, SourceInstaller, PhaseReady},    // nor restart it
		{PhasePoweringOn, SourceBMC, PhaseReady},       // nor can a BMC report
		{PhaseInstalling, SourceInstaller, PhaseReady}, // nor an installer
		{PhaseVerified, SourceOrchestrator, PhaseVerified},
		{PhaseFailed, SourceHTTP, PhaseVerified},
		{PhasePlanned, SourceOrchestrator, PhasePlanned}, // the operator's reinstall starts over
		{PhaseDHCP, SourceDHCP, PhaseDHCP},
		{PhaseFailed, SourceInstaller, PhaseFailed},
		{PhaseDHCP, SourceDHCP, PhaseDHCP}, // a failed node booting again moves on
		{PhaseInstalling, SourceInstaller, PhaseInstalling},
		{PhasePoweringOn, SourceBMC, PhasePoweringOn}, // the orchestrator's retry starts over
	}
	for i, s := range steps {
		at = at.Add(time.Second)
		cur, _ = advance(cur, Event{Phase: s.p, Source: s.src, At: at})
		if cur.phase != s.want {
			t.Fatalf("step %d (%s from %s): phase %s, want %s", i, s.p, s.src, cur.phase, s.want)
		}
	}
}

func TestPhaseTable(t *testing.T) {
	seen := map[Phase]bool{}
	last := -1
	for _, p := range Phases() {
		if seen[p] {
			t.Errorf("%s twice", p)
		}
		seen[p] = true
		if !knownPhase(p) || p.Label() == "" {
			t.Errorf("%s: known %v, label %q", p, knownPhase(p), p.Label())
		}
		if p != PhaseFailed && p != PhaseMismatch {
			if pr := p.Progress(100); pr < last {
				t.Errorf("%s: progress %d goes back from %d", p, pr, last)
			}
			last = p.Progress(100)
		}
	}
	if len(seen) != len(phases)-1 { // all but PhaseNone
		t.Errorf("Phases lists %d of %d phases", len(seen), len(phases)-1)
	}
	if PhaseInstalling.Progress(50) != 55 || PhaseInstalling.Progress(-1) != 25 || PhaseVerified.Progress(-1) != 100 {
		t.Errorf("progress: %d %d %d", PhaseInstalling.Progress(50), PhaseInstalling.Progress(-1), PhaseVerified.Progress(-1))
	}
	for p, want := range map[Phase]bool{PhaseInstalling: false, PhaseInstalled: true, PhaseReady: true, PhaseVerified: true, PhaseMismatch: true, PhaseFailed: false} {
		if p.Installed() != want {
			t.Errorf("%s.Installed() = %v", p, !want)
		}
	}
}

package events

// This file is the one table of what racklift knows about phases: their
// order, which mean "installed" (the reinstall guard), which end an
// install, and how far along each puts a node. The store's state machine,
// the orchestrator, the boot policy, `racklift status`, the dashboard (via
// the API's progress field) and the metrics all read it.

// phaseInfo describes one phase.
type phaseInfo struct {
	// rank is the position in the normal order (PhasePlanned = 1); 0 for
	// PhaseNone and PhaseFailed.
	rank int
	// installed: the OS disk holds this install; the node is never
	// installed again without the operator (Reinstall).
	installed bool
	// final: the install attempt is over (a run counts the node finished).
	final bool
	// from and to bound the node's overall progress in percent while in
	// this phase; inside PhaseInstalling the installer's own percent moves
	// it from from to to.
	from, to int
	// label is the phase as people read it.
	label string
}

// phases holds every Phase constant. Percentages: BMC and BIOS work and
// the network boot take the first quarter, the installer most of the rest,
// first boot and verification the end.
var phases = map[Phase]phaseInfo{
	PhaseNone:       {0, false, false, 0, 0, "not seen"},
	PhasePlanned:    {1, false, false, 0, 0, "planned"},
	PhaseBMCChecked: {2, false, false, 3, 3, "BMC checked"},
	PhaseBIOSOK:     {3, false, false, 6, 6, "BIOS set"},
	PhasePoweringOn: {4, false, false, 10, 10, "powering on"},
	PhaseDHCP:       {5, false, false, 15, 15, "DHCP"},
	PhaseIPXE:       {6, false, false, 18, 18, "boot script"},
	PhaseKernel:     {7, false, false, 22, 22, "installer loading"},
	PhaseInstalling: {8, false, false, 25, 85, "installing"},
	PhaseInstalled:  {9, true, false, 88, 88, "installed"},
	PhaseRebooting:  {10, true, false, 90, 90, "rebooting"},
	PhaseFirstBoot:  {11, true, false, 94, 94, "first boot"},
	PhaseReady:      {12, true, false, 97, 97, "ready, verifying"},
	PhaseVerified:   {13, true, true, 100, 100, "verified"},
	PhaseMismatch:   {13, true, true, 100, 100, "installed, differs from the plan"},
	PhaseFailed:     {0, false, true, 0, 0, "failed"},
}

// PhaseInfo is one row of the phase table, as the admin API serves it to
// the dashboard (which draws its bars and counts from it).
type PhaseInfo struct {
	Phase     Phase  `json:"phase"`
	Rank      int    `json:"rank"`
	Installed bool   `json:"installed"`
	Final     bool   `json:"final"`
	From      int    `json:"from"`
	To        int    `json:"to"`
	Label     string `json:"label"`
}

// PhaseTable returns the table for every phase of Phases, in that order.
func PhaseTable() []PhaseInfo {
	var out []PhaseInfo
	for _, p := range Phases() {
		i := phases[p]
		out = append(out, PhaseInfo{Phase: p, Rank: i.rank, Installed: i.installed, Final: i.final, From: i.from, To: i.to, Label: i.label})
	}
	return out
}

// Phases returns every phase in the normal order, PhaseFailed last.
func Phases() []Phase {
	return []Phase{PhasePlanned, PhaseBMCChecked, PhaseBIOSOK, PhasePoweringOn, PhaseDHCP, PhaseIPXE, PhaseKernel,
		PhaseInstalling, PhaseInstalled, PhaseRebooting, PhaseFirstBoot, PhaseReady, PhaseVerified, PhaseMismatch, PhaseFailed}
}

// Installed reports whether a node in phase p holds a finished install: it
// boots from its disk and is installed again only when the operator asks
// (racklift reinstall). Nothing a node or the network sends moves it out.
func (p Phase) Installed() bool { return phases[p].installed }

// Final reports whether an install attempt in phase p is over: verified,
// installed but different from the plan, or failed.
func (p Phase) Final() bool { return phases[p].final }

// Label is the phase in words.
func (p Phase) Label() string {
	if i, ok := phases[p]; ok {
		return i.label
	}
	return string(p)
}

// Progress is a node's overall progress in percent (0..100) in phase p,
// with pct the installer's own percent inside PhaseInstalling (-1 if
// unknown). A failed node shows 0.
func (p Phase) Progress(pct int) int {
	i := phases[p]
	if p == PhaseInstalling && pct >= 0 && pct <= 100 {
		return i.from + (i.to-i.from)*pct/100
	}
	return i.from
}

// phaseRank is a phase's position in the normal order (PhasePlanned = 1),
// 0 for PhaseNone and PhaseFailed, -1 for an unknown phase.
func phaseRank(p Phase) int {
	i, ok := phases[p]
	if !ok {
		return -1
	}
	return i.rank
}

// knownPhase reports whether p is one of the Phase constants.
func knownPhase(p Phase) bool { return phaseRank(p) >= 0 }

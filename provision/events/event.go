// Package events defines what racklift records about every node: one Event
// per thing seen (a DHCP offer, a TFTP transfer, a BMC call, an installer
// callback). Boot services and the BMC layer report events; only the
// orchestrator decides what to do about them.
//
// This file is the shared contract; the store and broker live beside it.
package events

import (
	"context"
	"time"
)

// Source names the part of racklift that saw the event.
type Source string

// Event sources.
const (
	SourceDHCP         Source = "dhcp"
	SourceTFTP         Source = "tftp"
	SourceHTTP         Source = "http"
	SourceBMC          Source = "bmc"
	SourceInstaller    Source = "installer"
	SourceOrchestrator Source = "orchestrator"
	SourceSecurity     Source = "security"
)

// Phase is a step of a node's install. The zero value PhaseNone marks an
// event that does not move the node to another phase (a TFTP block of
// detail, an ignored DHCP packet).
type Phase string

// Phases in the order a node normally passes through them.
const (
	PhaseNone       Phase = ""
	PhasePlanned    Phase = "planned"
	PhaseBMCChecked Phase = "bmc-checked"
	PhaseBIOSOK     Phase = "bios-ok"
	PhasePoweringOn Phase = "powering-on"
	PhaseDHCP       Phase = "dhcp"
	PhaseIPXE       Phase = "ipxe"
	PhaseKernel     Phase = "kernel"
	PhaseInstalling Phase = "installing"
	PhaseInstalled  Phase = "installed"
	PhaseRebooting  Phase = "rebooting"
	PhaseFirstBoot  Phase = "first-boot"
	PhaseReady      Phase = "ready"
	// PhaseVerified: the node's real state (interfaces, bonds, VLANs, MTU,
	// routes, disks) matches the plan. Only a verified node is done.
	PhaseVerified Phase = "verified"
	// PhaseMismatch: installed, but its real state differs from the plan;
	// the event's detail gives one reason per difference.
	PhaseMismatch Phase = "mismatch"
	PhaseFailed   Phase = "failed"
)

// Event is one thing racklift saw about one node (or about a MAC that is
// not in the plan, with Node empty).
type Event struct {
	// ID is assigned by the store when the event is persisted; it is
	// strictly increasing and is the SSE event id. Zero before storing.
	ID int64 `json:"id"`
	// At is when the event was seen (UTC). The store fills it if zero.
	At time.Time `json:"at"`
	// Node is the plan node name, empty for unknown machines.
	Node string `json:"node,omitempty"`
	// MAC is the provisioning MAC in canonical lower-case colon form, if known.
	MAC string `json:"mac,omitempty"`
	// Source is who saw it.
	Source Source `json:"source"`
	// Type is a short dotted kind, e.g. "dhcp.offer", "dhcp.ignore",
	// "tftp.done", "tftp.failed", "http.fetch", "bmc.power", "install.progress".
	Type string `json:"type"`
	// Phase, when not PhaseNone, is the phase this event puts the node in.
	Phase Phase `json:"phase,omitempty"`
	// Percent is installer progress within the phase, 0..100, or -1 if unknown.
	Percent int `json:"percent"`
	// Detail is a one-line human-readable description. Never holds secrets.
	Detail string `json:"detail,omitempty"`
	// Attrs holds small structured facts (client IP, file, bytes, duration
	// in ms, error kind). Never holds secrets.
	Attrs map[string]string `json:"attrs,omitempty"`
}

// Recorder is what a component needs to report events. Record returns only
// after the event is durable (for the persistent store) so a caller may
// acknowledge the thing that caused it.
type Recorder interface {
	Record(ctx context.Context, ev Event) (Event, error)
}

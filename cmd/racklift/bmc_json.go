package main

import (
	"encoding/json"
	"io"
	"time"
)

type bmcJSON struct {
	Command string         `json:"command"`
	Action  string         `json:"action,omitempty"`
	Cluster string         `json:"cluster"`
	Nodes   []bmcNodeJSON  `json:"nodes"`
	Summary bmcSummaryJSON `json:"summary"`
}

type bmcSummaryJSON struct {
	OK      int `json:"ok"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

type bmcNodeJSON struct {
	Node          string            `json:"node"`
	BMC           string            `json:"bmc"`
	Status        string            `json:"status"` // ok, failed, skipped
	Kind          string            `json:"kind,omitempty"`
	Reason        string            `json:"reason,omitempty"`
	Provider      string            `json:"provider,omitempty"`
	Started       *time.Time        `json:"started,omitempty"`
	DurationMS    float64           `json:"duration_ms"`
	Reachable     *bool             `json:"reachable,omitempty"`
	CredentialsOK *bool             `json:"credentials_ok,omitempty"`
	Power         string            `json:"power,omitempty"`
	Boot          *bmcBootJSON      `json:"boot,omitempty"`
	Inventory     *bmcInventoryJSON `json:"inventory,omitempty"`
	BIOS          map[string]string `json:"bios,omitempty"`
	Diff          *bmcDiffJSON      `json:"diff,omitempty"`
	Notes         []string          `json:"notes,omitempty"`
}

type bmcBootJSON struct {
	Device     string `json:"device"`
	EFI        bool   `json:"efi"`
	Persistent bool   `json:"persistent"`
}

type bmcInventoryJSON struct {
	Vendor      string   `json:"vendor,omitempty"`
	Model       string   `json:"model,omitempty"`
	Serial      string   `json:"serial,omitempty"`
	BMCFirmware string   `json:"bmc_firmware,omitempty"`
	BIOSVersion string   `json:"bios_version,omitempty"`
	MACs        []string `json:"macs,omitempty"`
}

type bmcDiffJSON struct {
	Family     string             `json:"family"`
	Converged  bool               `json:"converged"`
	NeedsReset bool               `json:"needs_reset"`
	Entries    []bmcDiffEntryJSON `json:"entries"`
}

type bmcDiffEntryJSON struct {
	Setting   string `json:"setting"`
	Attribute string `json:"attribute,omitempty"`
	Want      string `json:"want"`
	Before    string `json:"before,omitempty"`
	Got       string `json:"got,omitempty"`
	Status    string `json:"status"`
	Note      string `json:"note,omitempty"`
}

func (c *bmcCmd) writeJSON(w io.Writer, results []*bmcResult) error {
	out := bmcJSON{Command: c.name, Action: c.action, Cluster: c.p.Cluster.Name, Nodes: []bmcNodeJSON{}}
	for _, r := range results {
		j := bmcNodeJSON{
			Node:       r.node.Name,
			BMC:        r.addr,
			Status:     r.status(),
			Reason:     c.reason(r),
			Provider:   c.redact(r.provider),
			DurationMS: float64(r.duration) / float64(time.Millisecond),
			Notes:      c.notes(r),
		}
		switch j.Status {
		case "ok":
			out.Summary.OK++
		case "failed":
			out.Summary.Failed++
			j.Kind = r.kind.String()
		default:
			out.Summary.Skipped++
		}
		if !r.started.IsZero() {
			s := r.started
			j.Started = &s
		}
		if c.name == "status" && r.skipped == "" {
			reach, creds := bmcReachability(r)
			if reach != "?" {
				b := reach == "yes"
				j.Reachable = &b
			}
			if creds != "?" {
				b := creds == "yes"
				j.CredentialsOK = &b
			}
		}
		if c.name == "bootdev" && r.skipped == "" {
			o := c.bootOptions(r.node)
			j.Boot = &bmcBootJSON{Device: c.action, EFI: o.EFI, Persistent: o.Persistent}
		}
		if v := r.value; v != nil {
			j.Power = v.Power
			j.BIOS = v.BIOS
			if inv := v.Inventory; inv != nil {
				j.Inventory = &bmcInventoryJSON{Vendor: inv.Vendor, Model: inv.Model, Serial: inv.Serial,
					BMCFirmware: inv.BMCFirmware, BIOSVersion: inv.BIOSVersion, MACs: inv.MACs}
			}
			if d := v.Diff; d != nil {
				dj := &bmcDiffJSON{Family: d.Family, Converged: d.Converged(), NeedsReset: d.NeedsReset(), Entries: []bmcDiffEntryJSON{}}
				for _, en := range d.Entries {
					dj.Entries = append(dj.Entries, bmcDiffEntryJSON{Setting: en.Setting, Attribute: en.Attribute, Want: en.Want,
						Before: en.Before, Got: en.Got, Status: string(en.Status), Note: en.Note})
				}
				j.Diff = dj
			}
		}
		out.Nodes = append(out.Nodes, j)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

package agent

import (
	"errors"
	"fmt"
	"strings"

	"github.com/racklift/racklift/provision/nodeapi"
)

// Errors of disk matching, wrapped with the reason and the disks seen.
var (
	// ErrNoDisk: no disk matches a DiskMatch.
	ErrNoDisk = errors.New("no disk matches")
	// ErrAmbiguousDisk: more than one disk matches a DiskMatch.
	ErrAmbiguousDisk = errors.New("more than one disk matches")
	// ErrDiskConflict: the plan's disks overlap (an OSD disk is the OS
	// disk, two OSD entries are one disk) or a disk to write is read-only.
	ErrDiskConflict = errors.New("disk conflict")
	// ErrBadDiskMatch: a DiskMatch the agent cannot evaluate.
	ErrBadDiskMatch = errors.New("invalid disk selector")
)

// DescribeMatch says what a DiskMatch asks for: "serial OS-1",
// "by-id wwn-0x5000c500a1b2c3d4", "/dev/sda", with the size bounds.
func DescribeMatch(m nodeapi.DiskMatch) string {
	var s string
	switch {
	case m.Path != "":
		s = m.Path
	case m.ByID != "":
		s = "by-id " + m.ByID
	case m.Serial != "":
		s = "serial " + m.Serial
	default:
		s = "(no selector)"
	}
	switch {
	case m.MinBytes > 0 && m.MaxBytes > 0:
		s += fmt.Sprintf(" of %s to %s", HumanBytes(m.MinBytes), HumanBytes(m.MaxBytes))
	case m.MinBytes > 0:
		s += " of at least " + HumanBytes(m.MinBytes)
	case m.MaxBytes > 0:
		s += " of at most " + HumanBytes(m.MaxBytes)
	}
	return s
}

func seen(disks []Disk) string {
	if len(disks) == 0 {
		return "no disks seen (is the disk controller's driver in the agent's initramfs?)"
	}
	var b []string
	for _, d := range disks {
		b = append(b, d.String())
	}
	return "disks seen: " + strings.Join(b, "; ")
}

// identifies reports whether m's selector (path, by-id or serial, not
// the size) names d.
func identifies(m nodeapi.DiskMatch, d Disk) (bool, error) {
	set := 0
	for _, v := range []string{m.Path, m.ByID, m.Serial} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return false, fmt.Errorf("%w: want exactly one of path, by_id, serial (got %d)", ErrBadDiskMatch, set)
	}
	switch {
	case m.Serial != "":
		return d.Serial != "" && strings.EqualFold(strings.TrimSpace(m.Serial), d.Serial), nil
	case m.ByID != "":
		return hasByID(d, m.ByID), nil
	}
	p := m.Path
	if id, ok := strings.CutPrefix(p, "/dev/disk/by-id/"); ok {
		return hasByID(d, id), nil
	}
	name, ok := strings.CutPrefix(p, "/dev/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return false, fmt.Errorf("%w: path %q: the agent resolves /dev/NAME and /dev/disk/by-id/NAME only (there is no udev in the deploy environment); give by_id or serial instead", ErrBadDiskMatch, p)
	}
	return d.Name == name, nil
}

func hasByID(d Disk, id string) bool {
	for _, b := range d.ByID {
		if b == id {
			return true
		}
	}
	return false
}

// MatchDisk returns the one disk of disks that m identifies and whose
// size is within m's bounds. It refuses, with a reason listing the disks
// seen, when none or more than one does.
func MatchDisk(disks []Disk, m nodeapi.DiskMatch) (Disk, error) {
	var hits []Disk
	var wrongSize []string
	for _, d := range disks {
		ok, err := identifies(m, d)
		if err != nil {
			return Disk{}, err
		}
		if !ok {
			continue
		}
		switch {
		case m.MinBytes > 0 && d.Size < m.MinBytes:
			wrongSize = append(wrongSize, fmt.Sprintf("%s is %s, smaller than %s", d.Name, HumanBytes(d.Size), HumanBytes(m.MinBytes)))
		case m.MaxBytes > 0 && d.Size > m.MaxBytes:
			wrongSize = append(wrongSize, fmt.Sprintf("%s is %s, larger than %s", d.Name, HumanBytes(d.Size), HumanBytes(m.MaxBytes)))
		default:
			hits = append(hits, d)
		}
	}
	switch {
	case len(hits) == 1:
		return hits[0], nil
	case len(hits) > 1:
		var names []string
		for _, h := range hits {
			names = append(names, h.Name)
		}
		return Disk{}, fmt.Errorf("%w %s: %s; %s", ErrAmbiguousDisk, DescribeMatch(m), strings.Join(names, ", "), seen(disks))
	case len(wrongSize) > 0:
		return Disk{}, fmt.Errorf("%w %s: %s; %s", ErrNoDisk, DescribeMatch(m), strings.Join(wrongSize, "; "), seen(disks))
	}
	return Disk{}, fmt.Errorf("%w %s; %s", ErrNoDisk, DescribeMatch(m), seen(disks))
}

// OSDTarget is one of the plan's OSD disks as found on the node.
type OSDTarget struct {
	Match nodeapi.DiskMatch
	// Disk is the disk found; nil when none matched (allowed only for
	// disks not marked Wipe: the agent never touches them anyway).
	Disk *Disk
}

// DiskPlan is what the agent will write: the OS disk and the OSD disks.
type DiskPlan struct {
	OS   Disk
	OSDs []OSDTarget
	// Warnings are facts worth reporting that do not stop the install
	// (an OSD disk not marked wipe that is not there).
	Warnings []string
}

// PlanDisks matches the instructions' OS and OSD disks against the disks
// seen. It refuses (before anything is written) when the OS disk is not
// exactly one disk or is read-only, when an OSD entry matches more than
// one disk, when an OSD entry is the OS disk or two entries are one disk,
// and when an OSD disk marked Wipe is missing or read-only.
func PlanDisks(disks []Disk, osDisk nodeapi.DiskMatch, osds []nodeapi.DiskMatch) (DiskPlan, error) {
	var p DiskPlan
	d, err := MatchDisk(disks, osDisk)
	if err != nil {
		return DiskPlan{}, fmt.Errorf("OS disk: %w", err)
	}
	if d.ReadOnly {
		return DiskPlan{}, fmt.Errorf("%w: OS disk %s is read-only (write-protect switch or controller setting)", ErrDiskConflict, d)
	}
	p.OS = d
	used := map[string]string{d.Name: "the OS disk (" + DescribeMatch(osDisk) + ")"}
	for i, m := range osds {
		od, err := MatchDisk(disks, m)
		switch {
		case errors.Is(err, ErrNoDisk) && !m.Wipe:
			p.Warnings = append(p.Warnings, fmt.Sprintf("OSD disk %d (%s) not found; it is not touched", i+1, DescribeMatch(m)))
			p.OSDs = append(p.OSDs, OSDTarget{Match: m})
			continue
		case err != nil:
			return DiskPlan{}, fmt.Errorf("OSD disk %d: %w", i+1, err)
		}
		if other, dup := used[od.Name]; dup {
			return DiskPlan{}, fmt.Errorf("%w: OSD disk %d (%s) is %s, which is also %s", ErrDiskConflict, i+1, DescribeMatch(m), od.Name, other)
		}
		if m.Wipe && od.ReadOnly {
			return DiskPlan{}, fmt.Errorf("%w: OSD disk %d %s is marked wipe but is read-only", ErrDiskConflict, i+1, od)
		}
		used[od.Name] = fmt.Sprintf("OSD disk %d (%s)", i+1, DescribeMatch(m))
		p.OSDs = append(p.OSDs, OSDTarget{Match: m, Disk: &od})
	}
	return p, nil
}

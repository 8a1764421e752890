package agent

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Runner runs a program and returns its combined output.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// BootEntry is one UEFI Boot#### variable as efibootmgr lists it.
type BootEntry struct {
	Num    string // "0004"
	Active bool
	Label  string
}

// BootTable is what `efibootmgr` prints: the entries and the boot order.
type BootTable struct {
	Current string
	Order   []string
	Entries []BootEntry
}

var (
	bootEntryRE = regexp.MustCompile(`^Boot([0-9A-Fa-f]{4})(\*?)\s+(.*)$`)
)

// ParseBootTable reads efibootmgr's (versions 17 and 18) listing. With -v
// an entry's device path follows its label after a tab (efibootmgr 17)
// or two spaces; only the label is kept.
func ParseBootTable(out string) BootTable {
	var t BootTable
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "BootCurrent:"):
			t.Current = strings.TrimSpace(strings.TrimPrefix(line, "BootCurrent:"))
		case strings.HasPrefix(line, "BootOrder:"):
			for _, n := range strings.Split(strings.TrimSpace(strings.TrimPrefix(line, "BootOrder:")), ",") {
				if n = strings.TrimSpace(n); n != "" {
					t.Order = append(t.Order, strings.ToUpper(n))
				}
			}
		default:
			m := bootEntryRE.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			label := m[3]
			if i := strings.IndexByte(label, '\t'); i >= 0 {
				label = label[:i]
			}
			t.Entries = append(t.Entries, BootEntry{Num: strings.ToUpper(m[1]), Active: m[2] == "*", Label: strings.TrimSpace(label)})
		}
	}
	return t
}

// BootLabel is the label of the entry the agent creates for an image.
func BootLabel(imageName string) string { return "racklift " + imageName }

// ErrBootEntry: the UEFI boot entry could not be set.
var ErrBootEntry = errors.New("UEFI boot entry")

// AddBootEntry creates a UEFI boot entry labelled label for loader (a
// path in the EFI system partition, "\EFI\debian\shimx64.efi") on
// partition part of disk, removes older entries with the same label
// (from earlier installs), and makes the new one the first in BootOrder.
// It returns `efibootmgr -v` after the change. efivarfs must be mounted.
func AddBootEntry(ctx context.Context, run Runner, disk string, part int, loader, label string) (string, error) {
	out, err := run(ctx, "efibootmgr")
	if err != nil {
		return "", fmt.Errorf("%w: efibootmgr: %v: %s", ErrBootEntry, err, strings.TrimSpace(string(out)))
	}
	for _, e := range ParseBootTable(string(out)).Entries {
		if e.Label == label {
			if out, err := run(ctx, "efibootmgr", "-q", "-b", e.Num, "-B"); err != nil {
				return "", fmt.Errorf("%w: remove the old entry Boot%s: %v: %s", ErrBootEntry, e.Num, err, strings.TrimSpace(string(out)))
			}
		}
	}
	if out, err := run(ctx, "efibootmgr", "-q", "-c", "-d", disk, "-p", strconv.Itoa(part), "-L", label, "-l", loader); err != nil {
		return "", fmt.Errorf("%w: efibootmgr -c -d %s -p %d -l %s: %v: %s", ErrBootEntry, disk, part, loader, err, strings.TrimSpace(string(out)))
	}
	out, err = run(ctx, "efibootmgr")
	if err != nil {
		return "", fmt.Errorf("%w: efibootmgr: %v", ErrBootEntry, err)
	}
	t := ParseBootTable(string(out))
	num := ""
	for _, e := range t.Entries {
		if e.Label == label {
			num = e.Num
		}
	}
	if num == "" {
		return "", fmt.Errorf("%w: efibootmgr created no entry %q (the firmware may refuse new variables: is its NVRAM full?)", ErrBootEntry, label)
	}
	if len(t.Order) == 0 || t.Order[0] != num {
		order := []string{num}
		for _, n := range t.Order {
			if n != num {
				order = append(order, n)
			}
		}
		if out, err := run(ctx, "efibootmgr", "-q", "-o", strings.Join(order, ",")); err != nil {
			return "", fmt.Errorf("%w: set BootOrder %s: %v: %s", ErrBootEntry, strings.Join(order, ","), err, strings.TrimSpace(string(out)))
		}
	}
	v, err := run(ctx, "efibootmgr", "-v")
	if err != nil {
		return "", fmt.Errorf("%w: efibootmgr -v: %v", ErrBootEntry, err)
	}
	if t := ParseBootTable(string(v)); len(t.Order) == 0 || t.Order[0] != num {
		return string(v), fmt.Errorf("%w: Boot%s is not first in BootOrder %v after setting it", ErrBootEntry, num, t.Order)
	}
	return string(v), nil
}

package plan

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// diskUnits maps a size suffix (lower case) to its factor: K, M, G, T, P
// (with or without B) are powers of 1000, as disk labels and data sheets
// count; KiB ... PiB are powers of 1024, as lsblk and the kernel count.
var diskUnits = map[string]float64{
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12, "p": 1e15, "pb": 1e15,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50,
}

// ParseDiskSize parses a disk size such as "480G", "1.92T", "960GiB" or
// "3.84 TB" into bytes. A unit is required; G and T are powers of 1000,
// GiB and TiB powers of 1024.
func ParseDiskSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return 0, errors.New("want a number followed by a unit")
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", num)
	}
	factor, ok := diskUnits[unit]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q", t[i:])
	}
	b := f * factor
	switch {
	case b < 1:
		return 0, errors.New("the size is zero")
	case b > math.MaxInt64/2:
		return 0, errors.New("the size is too large")
	}
	return int64(math.Round(b)), nil
}

// FormatDiskSize shows a size in bytes the two ways people read disk
// sizes: "480.1 GB (447.1 GiB)".
func FormatDiskSize(b int64) string {
	dec := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	bin := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	scale := func(v float64, base float64, units []string) string {
		i := 0
		for v >= base && i < len(units)-1 {
			v /= base
			i++
		}
		if i == 0 {
			return fmt.Sprintf("%.0f %s", v, units[0])
		}
		return fmt.Sprintf("%.1f %s", v, units[i])
	}
	if b < 1000 {
		return fmt.Sprintf("%d B", b)
	}
	return scale(float64(b), 1000, dec) + " (" + scale(float64(b), 1024, bin) + ")"
}

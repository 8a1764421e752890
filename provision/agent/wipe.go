package agent

import (
	"fmt"
	"strings"
)

// wipeSpan is how much is cleared at each end of the disk and of each
// partition: it covers every signature libblkid (wipefs -a) finds
// (partition tables, superblocks, LVM labels and the first metadata
// area, BlueStore's label, MD superblocks), plus what a new OSD
// deployment tool would otherwise trip over.
const wipeSpan = 1 << 20

// WipeResult reports what Wipe cleared.
type WipeResult struct {
	// Before are the signatures the disk carried.
	Before []Signature
	// Partitions is how many partitions were cleared (their first and
	// last MiB) besides the disk's own first and last MiB.
	Partitions int
}

// Kinds lists the signatures' kinds ("gpt, ext4").
func (w WipeResult) Kinds() string {
	var k []string
	for _, s := range w.Before {
		k = append(k, s.Kind)
	}
	if len(k) == 0 {
		return "none"
	}
	return strings.Join(k, ", ")
}

// Wipe clears the signatures of an OSD disk of size bytes: the first and
// last MiB of every partition its table lists (GPT primary or backup, or
// the MBR's primary partitions), so no file system, LVM or BlueStore
// label inside a partition survives to be found again, then the disk's
// own first and last MiB (protective MBR, both GPTs, whole-disk labels).
// It syncs and checks that no signature is left. It is the zap that
// ceph-volume does, a superset of `wipefs -a`; the data between the
// cleared areas is not erased.
func Wipe(d *Device, size int64) (WipeResult, error) {
	res := WipeResult{Before: Signatures(d, size)}
	type span struct{ start, end int64 }
	var parts []span
	if g, err := ReadGPT(d); err == nil {
		for _, e := range g.Entries {
			if e.Used() {
				parts = append(parts, span{int64(e.FirstLBA) * SectorSize, int64(e.LastLBA+1) * SectorSize})
			}
		}
	} else if g, err := readGPTAt(d, uint64(size/SectorSize)-1); err == nil {
		for _, e := range g.Entries {
			if e.Used() {
				parts = append(parts, span{int64(e.FirstLBA) * SectorSize, int64(e.LastLBA+1) * SectorSize})
			}
		}
	} else if ents, ok, _ := readMBR(d); ok {
		for _, e := range ents {
			if e.Type != 0 && e.Type != 0xee && e.Size > 0 {
				parts = append(parts, span{int64(e.Start) * SectorSize, int64(e.Start+e.Size) * SectorSize})
			}
		}
	}
	zero := func(start, end int64) error {
		start, end = max(start, 0), min(end, size)
		if end <= start {
			return nil
		}
		if err := d.Zero(start, min(wipeSpan, end-start)); err != nil {
			return err
		}
		if end-start > wipeSpan {
			tail := max(end-wipeSpan, start+wipeSpan)
			if err := d.Zero(tail, end-tail); err != nil {
				return err
			}
		}
		return nil
	}
	for _, p := range parts {
		if err := zero(p.start, p.end); err != nil {
			return res, fmt.Errorf("wipe partition at byte %d: %w", p.start, err)
		}
		res.Partitions++
	}
	if err := zero(0, size); err != nil {
		return res, fmt.Errorf("wipe: %w", err)
	}
	if err := d.Sync(); err != nil {
		return res, fmt.Errorf("wipe: sync: %w", err)
	}
	if err := d.DropCache(); err != nil {
		return res, fmt.Errorf("wipe: %w", err)
	}
	if left := Signatures(d, size); len(left) > 0 {
		return res, fmt.Errorf("wipe: signatures left after clearing: %v", left)
	}
	return res, nil
}

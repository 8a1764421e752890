package media

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"
	"unicode/utf16"
)

// File Flags of a directory record (ECMA-119 §9.1.6).
const (
	flagDir   = 0x02 // Directory
	flagAssoc = 0x04 // Associated File
	flagMulti = 0x80 // Multi-Extent: not the final record of the file
)

// POSIX file type bits of a Rock Ridge PX entry (st_mode & S_IFMT).
const (
	sIFMT  = 0o170000
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFLNK = 0o120000
)

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

// record is the decoded fixed part of a directory record (ECMA-119 §9.1).
type record struct {
	extent   int64 // byte offset of the data (after the extended attribute record)
	length   int64 // data length in bytes
	recorded time.Time
	flags    byte
	unitSize byte // File Unit Size; non-zero means interleaved
	gap      byte // Interleave Gap Size
	ident    []byte
	sua      []byte // System Use area (SUSP entries), LEN_SKP not applied
}

// parseRecord decodes one directory record. rec must be exactly the record's
// bytes (rec[0] == len(rec)).
//
//	0 length, 1 extended attribute record length, 2-9 extent (both-endian),
//	10-17 data length (both-endian), 18-24 recording time, 25 flags,
//	26 file unit size, 27 interleave gap, 28-31 volume sequence number,
//	32 identifier length, 33- identifier, padding to even, System Use.
func parseRecord(rec []byte, blockSize int64) (record, bool) {
	if len(rec) < 34 || int(rec[0]) > len(rec) || rec[0] < 34 {
		return record{}, false
	}
	rec = rec[:rec[0]]
	idLen := int(rec[32])
	suaStart := 33 + idLen
	if idLen%2 == 0 {
		suaStart++ // padding field
	}
	if idLen == 0 || 33+idLen > len(rec) {
		return record{}, false
	}
	r := record{
		extent:   (int64(le32(rec[2:])) + int64(rec[1])) * blockSize,
		length:   int64(le32(rec[10:])),
		recorded: recordTime(rec[18:25]),
		flags:    rec[25],
		unitSize: rec[26],
		gap:      rec[27],
		ident:    rec[33 : 33+idLen],
	}
	if suaStart < len(rec) {
		r.sua = rec[suaStart:]
	}
	return r, true
}

// isDotRecord reports the "." (0x00) and ".." (0x01) identifiers.
func isDotRecord(id []byte) bool { return len(id) == 1 && id[0] <= 1 }

// recordTime decodes the 7-byte directory record time (ECMA-119 §9.1.5):
// years since 1900, month, day, hour, minute, second, and the offset from
// GMT in 15-minute intervals (-48..52). An all-zero time is "not specified".
func recordTime(b []byte) time.Time {
	if b[1] == 0 || b[2] == 0 {
		return time.Time{}
	}
	t := time.Date(1900+int(b[0]), time.Month(b[1]), int(b[2]), int(b[3]), int(b[4]), int(b[5]), 0, time.UTC)
	if off := int(int8(b[6])); off >= -48 && off <= 52 {
		t = t.Add(-time.Duration(off) * 15 * time.Minute)
	}
	return t
}

// longTime decodes a 17-byte dec-datetime (ECMA-119 §8.4.26.1), used by
// Rock Ridge TF entries with the LONG_FORM flag.
func longTime(b []byte) time.Time {
	num := func(s []byte) (int, bool) {
		v := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	var f [7]int
	widths := [7]int{4, 2, 2, 2, 2, 2, 2}
	p := 0
	for i, w := range widths {
		v, ok := num(b[p : p+w])
		if !ok {
			return time.Time{}
		}
		f[i] = v
		p += w
	}
	if f[0] == 0 || f[1] == 0 || f[2] == 0 {
		return time.Time{}
	}
	t := time.Date(f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], f[6]*10*int(time.Millisecond), time.UTC)
	if off := int(int8(b[16])); off >= -48 && off <= 52 {
		t = t.Add(-time.Duration(off) * 15 * time.Minute)
	}
	return t
}

// readRecordAt reads the directory record starting at byte off (used for the
// "." record of a directory).
func (x *ISO) readRecordAt(off int64) (record, bool) {
	if off < 0 || off >= x.size {
		return record{}, false
	}
	n := min(int64(255), x.size-off)
	buf := make([]byte, n)
	if readFull(x.r, buf, off) != nil {
		return record{}, false
	}
	return parseRecord(buf, x.blockSize)
}

// dirList is a parsed directory. It is shared through the cache and never
// modified after parseDir returns.
type dirList struct {
	nodes  []*node // sorted by name
	byName map[string]*node
}

// parseDir decodes the records of one directory extent. Malformed records are
// skipped; a record never spans a logical block (ECMA-119 §6.8.1.1), so a
// zero length byte or a record that would cross the boundary moves to the
// next block.
func (x *ISO) parseDir(data []byte) (*dirList, error) {
	l := &dirList{byName: make(map[string]*node)}
	add := func(n *node) {
		if _, dup := l.byName[n.name]; dup {
			return
		}
		l.byName[n.name] = n
		l.nodes = append(l.nodes, n)
	}
	bs := int(x.blockSize)
	var pending *node // multi-extent file awaiting its final record
	var pendingID []byte
	records := 0
	for pos := 0; pos < len(data); {
		rl := int(data[pos])
		if rl == 0 || rl < 34 || pos+rl > len(data) || pos%bs+rl > bs {
			pos = (pos/bs + 1) * bs
			continue
		}
		r, ok := parseRecord(data[pos:pos+rl], x.blockSize)
		pos += rl
		if records++; records > maxDirEntries {
			return nil, fmt.Errorf("%w: more than %d records in a directory", ErrCorrupt, maxDirEntries)
		}
		if !ok || isDotRecord(r.ident) {
			continue
		}
		if pending != nil {
			if string(r.ident) == string(pendingID) && r.flags&flagDir == 0 {
				x.addExtent(pending, r)
				if r.flags&flagMulti == 0 {
					add(pending)
					pending = nil
				}
				continue
			}
			add(pending) // run cut short: keep the extents we have
			pending = nil
		}
		n := x.makeNode(r)
		if n == nil {
			continue
		}
		if r.flags&flagMulti != 0 && n.mode.IsRegular() {
			pending, pendingID = n, r.ident
			continue
		}
		add(n)
	}
	if pending != nil {
		add(pending)
	}
	slices.SortFunc(l.nodes, func(a, b *node) int { return strings.Compare(a.name, b.name) })
	return l, nil
}

// addExtent appends the data of record r to file n.
func (x *ISO) addExtent(n *node, r record) {
	if len(n.extents) >= maxExtents {
		n.bad = true
		return
	}
	if r.unitSize != 0 || r.gap != 0 {
		n.interleaved = true
	}
	n.size += r.length
	if n.size > x.size {
		n.bad = true // more data than the image holds: extents overlap
	}
	if r.length == 0 {
		return
	}
	if r.extent < 0 || r.extent > x.size-r.length {
		n.bad = true
	}
	n.extents = append(n.extents, extent{r.extent, r.length})
}

// makeNode turns a directory record into a node, or nil if the record is to
// be skipped (associated files, unusable names, relocated directories,
// device nodes, FIFOs, sockets).
func (x *ISO) makeNode(r record) *node {
	if r.flags&flagAssoc != 0 {
		return nil
	}
	n := &node{modTime: r.recorded}
	isDir := r.flags&flagDir != 0
	var rr rrInfo
	switch x.ns {
	case nsRockRidge:
		rr = x.parseRR(x.skipSUSP(r.sua), false)
		if rr.relocated {
			return nil // shown where its CL placeholder is
		}
		n.name = rr.name
		if n.name == "" {
			n.name = plainName(r.ident, false)
		}
	case nsJoliet:
		n.name = jolietName(r.ident)
	default:
		n.name = plainName(r.ident, true)
	}
	if !validName(n.name) {
		return nil
	}

	if rr.hasCL {
		// A Rock Ridge child link: this placeholder file stands for the
		// directory relocated to CL's location, whose "." record has the
		// extent and attributes.
		off := int64(rr.childLBA) * x.blockSize
		dot, ok := x.readRecordAt(off)
		if !ok || dot.flags&flagDir == 0 {
			return nil
		}
		n.mode = fs.ModeDir | 0o555
		n.size = dot.length
		n.modTime = dot.recorded
		n.extents = []extent{{dot.extent, dot.length}}
		x.applyRRDir(n, x.parseRR(x.skipSUSP(dot.sua), false))
		return n
	}

	if isDir {
		n.mode = fs.ModeDir | 0o555
		n.size = r.length
		n.extents = []extent{{r.extent, r.length}}
		x.applyRRDir(n, rr)
		return n
	}

	n.mode = 0o444
	if rr.hasTime {
		n.modTime = rr.modTime
	}
	if rr.hasMode {
		switch rr.mode & sIFMT {
		case sIFREG, 0:
		case sIFLNK:
			if !rr.hasLink {
				return nil
			}
		default: // character or block device, FIFO, socket
			return nil
		}
		n.mode = posixPerm(rr.mode)
	}
	if rr.hasLink && (!rr.hasMode || rr.mode&sIFMT == sIFLNK) {
		if rr.target == "" {
			return nil
		}
		n.mode = fs.ModeSymlink | 0o777
		if rr.hasMode {
			n.mode = fs.ModeSymlink | posixPerm(rr.mode)
		}
		n.target = rr.target
		n.size = int64(len(rr.target))
		return n
	}
	x.addExtent(n, r)
	return n
}

// skipSUSP drops the SP entry's LEN_SKP bytes from a System Use area.
func (x *ISO) skipSUSP(sua []byte) []byte {
	if x.suspSkip >= len(sua) {
		return nil
	}
	return sua[x.suspSkip:]
}

// applyRRDir applies Rock Ridge PX permissions and TF time to a directory.
func (x *ISO) applyRRDir(n *node, rr rrInfo) {
	if rr.hasMode {
		n.mode = fs.ModeDir | posixPerm(rr.mode)
	}
	if rr.hasTime {
		n.modTime = rr.modTime
	}
}

// posixPerm converts st_mode permission bits to fs.FileMode.
func posixPerm(m uint32) fs.FileMode {
	p := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		p |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		p |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		p |= fs.ModeSticky
	}
	return p
}

// validName reports whether name can be an fs.FS path element.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// plainName converts an ISO 9660 identifier: drop the ";1" version and a
// trailing ".", and optionally lower-case ASCII letters (Linux map=normal).
func plainName(id []byte, lower bool) string {
	s := string(id)
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(s, ".")
	if lower {
		s = strings.ToLower(s)
	}
	return s
}

// jolietName decodes a Joliet identifier (UCS-2 big-endian; UTF-16 surrogate
// pairs are accepted) and drops a ";N" version and a trailing ".".
func jolietName(id []byte) string {
	u := make([]uint16, len(id)/2)
	for i := range u {
		u[i] = uint16(id[2*i])<<8 | uint16(id[2*i+1])
	}
	s := string(utf16.Decode(u))
	if i := strings.LastIndexByte(s, ';'); i >= 0 && strings.Trim(s[i+1:], "0123456789") == "" {
		s = s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

// rrInfo collects the SUSP and Rock Ridge entries of one directory record.
type rrInfo struct {
	name     string
	target   string
	modTime  time.Time
	mode     uint32
	childLBA uint32
	spSkip   int
	hasMode  bool
	hasLink  bool
	hasTime  bool
	hasCL    bool
	// relocated is the RE entry: a directory moved here only to stay within
	// eight levels, shown by its parent's CL placeholder instead.
	relocated bool
	sp        bool // SUSP "SP" indicator (root "." record only)
	er        bool // "ER" naming a Rock Ridge extension
	anyRR     bool // any RRIP entry
}

// parseRR decodes the SUSP entries of a System Use area. root selects the
// root "." record, the only place an SP entry counts.
func (x *ISO) parseRR(sua []byte, root bool) rrInfo {
	var rr rrInfo
	if root && len(sua) >= 7 && sua[0] == 'S' && sua[1] == 'P' && sua[2] >= 7 && sua[4] == 0xBE && sua[5] == 0xEF {
		rr.sp = true
		rr.spSkip = int(sua[6])
	}
	var name, link []byte
	var sl slBuilder
	x.walkSUSP(sua, func(sig [2]byte, data []byte) {
		switch string(sig[:]) {
		case "ER":
			if len(data) >= 4 && 4+int(data[0]) <= len(data) {
				switch string(data[4 : 4+int(data[0])]) {
				case "RRIP_1991A", "IEEE_P1282", "IEEE_1282":
					rr.er = true
				}
			}
		case "RR":
			rr.anyRR = true
		case "PX":
			rr.anyRR = true
			if len(data) >= 4 {
				rr.mode = le32(data)
				rr.hasMode = true
			}
		case "NM":
			rr.anyRR = true
			if len(data) >= 1 && data[0]&0x26 == 0 { // not CURRENT, PARENT, HOST
				if len(name)+len(data)-1 <= maxNameBytes {
					name = append(name, data[1:]...)
				}
			}
		case "SL":
			rr.anyRR = true
			if len(data) >= 1 {
				rr.hasLink = true
				sl.add(data[1:])
			}
		case "TF":
			rr.anyRR = true
			if t, ok := tfModify(data); ok {
				rr.modTime, rr.hasTime = t, true
			}
		case "CL":
			if len(data) >= 4 {
				rr.childLBA = le32(data)
				rr.hasCL = true
			}
		case "RE":
			rr.relocated = true
		}
	})
	rr.name = string(name)
	if rr.hasLink {
		link = sl.target()
		if len(link) <= maxLinkBytes {
			rr.target = string(link)
		}
	}
	return rr
}

// walkSUSP calls visit for every SUSP entry (signature, data after the 4-byte
// header) in area and in its continuation areas (CE), in order. ST ends the
// walk. Continuations are bounded in number and must lie inside the image.
func (x *ISO) walkSUSP(area []byte, visit func(sig [2]byte, data []byte)) {
	for hops := 0; ; hops++ {
		var ceOff, ceLen int64 = -1, 0
		for len(area) >= 4 {
			l := int(area[2])
			if l < 4 || l > len(area) {
				break
			}
			e := area[:l]
			area = area[l:]
			switch {
			case e[0] == 'S' && e[1] == 'T':
				return
			case e[0] == 'C' && e[1] == 'E':
				if l >= 28 {
					ceOff = int64(le32(e[4:]))*x.blockSize + int64(le32(e[12:]))
					ceLen = int64(le32(e[20:]))
				}
			default:
				visit([2]byte{e[0], e[1]}, e[4:])
			}
		}
		if ceOff < 0 || hops >= maxContinuations || ceLen < 4 || ceLen > sectorSize || ceOff > x.size-ceLen {
			return
		}
		area = make([]byte, ceLen)
		if readFull(x.r, area, ceOff) != nil {
			return
		}
	}
}

// tfModify extracts the modify time from a Rock Ridge TF entry's data:
// flags, then a 7-byte (or 17-byte with LONG_FORM) time per set flag bit, in
// bit order creation, modify, access, attributes, backup, expiration,
// effective.
func tfModify(data []byte) (time.Time, bool) {
	if len(data) < 1 {
		return time.Time{}, false
	}
	flags := data[0]
	size := 7
	if flags&0x80 != 0 {
		size = 17
	}
	if flags&0x02 == 0 {
		return time.Time{}, false
	}
	p := 1
	if flags&0x01 != 0 {
		p += size
	}
	if p+size > len(data) {
		return time.Time{}, false
	}
	if size == 17 {
		return longTime(data[p : p+size]), true
	}
	return recordTime(data[p : p+size]), true
}

// slBuilder assembles a Rock Ridge SL target from component records that may
// span several SL entries (RRIP §4.1.3).
type slBuilder struct {
	parts [][]byte
	cur   []byte
	cont  bool // the last component continues in the next one
	abs   bool
	size  int
}

// add decodes the component records of one SL entry.
func (b *slBuilder) add(comps []byte) {
	for len(comps) >= 2 {
		flags, n := comps[0], int(comps[1])
		if 2+n > len(comps) {
			return
		}
		content := comps[2 : 2+n]
		comps = comps[2+n:]
		b.size += n + 1
		if b.size > maxLinkBytes+1 {
			return
		}
		switch {
		case flags&0x02 != 0: // CURRENT
			content = []byte(".")
		case flags&0x04 != 0: // PARENT
			content = []byte("..")
		case flags&0x38 != 0: // ROOT, VOLROOT, HOST: an absolute path
			b.parts, b.cur, b.cont, b.abs = nil, nil, false, true
			continue
		}
		b.cur = append(b.cur, content...)
		if flags&0x01 != 0 { // CONTINUE
			b.cont = true
			continue
		}
		b.parts = append(b.parts, b.cur)
		b.cur, b.cont = nil, false
	}
}

// target returns the assembled link target.
func (b *slBuilder) target() []byte {
	parts := b.parts
	if b.cont || len(b.cur) > 0 {
		parts = append(parts, b.cur)
	}
	var out []byte
	if b.abs {
		out = append(out, '/')
	}
	for i, p := range parts {
		if i > 0 {
			out = append(out, '/')
		}
		out = append(out, p...)
	}
	return out
}

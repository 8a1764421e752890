// Package media gives racklift's HTTP server read-only access to OS install
// media: an ISO 9660 image read in place (no mount, no root) or a directory.
//
// Open parses a --media flag value of the form NAME=PATH:
//
//	--media rocky9=/srv/Rocky-9.4-x86_64-dvd.iso   # ISO 9660 image -> *ISO
//	--media debian12=/srv/mirror/debian12          # directory -> os.Root FS
//
// A directory is served through os.Root, so symlinks cannot escape it.
//
// # ISO 9660 reader
//
// ISO is a pure-Go reader for ECMA-119 (ISO 9660) images that implements
// fs.FS, fs.StatFS, fs.ReadDirFS and fs.ReadLinkFS. Files opened from it
// implement io.Reader, io.ReaderAt and io.Seeker, so http.ServeContent can
// answer Range and HEAD requests without reading the whole file.
//
// The reader follows ECMA-119 4th edition (2019):
//
//   - §8.4 (Primary Volume Descriptor) and §8.5 (Supplementary Volume
//     Descriptor): volume descriptors start at logical sector 16 (byte 32768),
//     2048 bytes each, "CD001" at offset 1, ending with a terminator (type 255).
//   - §9.1 (Directory Record): "Each Directory Record shall end in the Logical
//     Sector in which it begins"; a zero length byte therefore means "skip to
//     the next sector". The record's data starts Extended Attribute Record
//     Length blocks after the extent location.
//   - §9.1.6 (File Flags) bit 7, Multi-Extent: "the Directory Record is not
//     the final Directory Record for the file". A file larger than 4 GiB is a
//     run of records with the same identifier, each describing one extent; the
//     reader joins them into one logical file.
//
// Names come from one of three namespaces, chosen once per image, in this
// order of preference:
//
//  1. Rock Ridge (IEEE P1282 RRIP over IEEE P1281 SUSP). Detected by the SUSP
//     "SP" entry in the root directory's "." record plus an "ER" entry naming
//     RRIP_1991A, IEEE_P1282 or IEEE_1282 (or RRIP entries in that record, for
//     writers that omit ER). The reader decodes NM (alternate name, with
//     CONTINUE), PX (POSIX mode bits), SL (symbolic link), TF (modify time),
//     CL/RE (deep directory relocation: a CL entry stands for the directory it
//     points to; RE-flagged directories are hidden from their physical parent)
//     and follows CE continuation areas (bounded).
//  2. Joliet: names in UCS-2/UTF-16 big-endian from the Supplementary Volume
//     Descriptor whose escape sequence is %/@, %/C or %/E.
//  3. Plain ISO 9660 identifiers, with the ";1" version and a trailing "."
//     removed and letters lower-cased (as Linux does with map=normal).
//
// Symbolic links (Rock Ridge SL) are listed with fs.ModeSymlink and are
// followed by Open and Stat when they resolve within the image: relative
// targets are resolved against the link's directory, at most 40 links per
// lookup. Absolute targets and targets that climb above the image root are
// refused (like os.Root), because the image root is not the host's root.
// Lstat and ReadLink report the link itself. Device nodes, FIFOs and sockets
// (PX type bits) are skipped: there is nothing to serve.
//
// Files with the Existence ("hidden") flag are listed, as Linux does by
// default; Associated Files are not. Interleaved files (file unit size
// non-zero), which no current mastering tool writes, are listed but cannot be
// opened (errors.ErrUnsupported). With Rock Ridge, a record without an NM
// entry keeps its ISO 9660 name (version and trailing dot removed, case kept).
// Logical block sizes of 512, 1024 and 2048 bytes are accepted; only 2048 is
// tested (every mastering tool in use writes it).
//
// # Corrupt images
//
// Images come from outside, so every offset and length read from the image is
// checked against the image size before use, directory sizes and entry counts
// are capped, SUSP continuation chains, name lengths and symlink chains are
// bounded, and directory cycles (a directory whose extent is one of its own
// ancestors) are reported as ErrCorrupt rather than followed. Malformed
// directory records are skipped. A file whose extent lies beyond the end of
// the image is listed but cannot be opened. FuzzISO exercises all of this.
//
// Directories are parsed on first use and kept in a cache bounded by the total
// number of directory entries it holds (least recently used dropped first).
// An ISO is safe for concurrent use.
package media

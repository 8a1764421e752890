// Package image holds the OS images racklift deploys with its own agent
// (profiles of installer kind "image"): `racklift image import` turns a
// raw, compressed raw or qcow2 image once into a manifest plus
// content-addressed, compressed blobs in the state directory; racklift
// serves them (nodeapi.PathImageManifest, nodeapi.PathBlob) and the deploy
// agent streams them onto the node's OS disk, checking every checksum.
package image

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// FormatVersion is the manifest format this racklift writes and reads.
const FormatVersion = 1

// Manifest describes one imported image. It is stored as
// STATE/images/NAME/manifest.json and served as is; its SHA-256 goes to
// the agent through its authenticated instructions, so a manifest (and,
// through it, every blob) fetched from anywhere can be checked.
type Manifest struct {
	// Format is FormatVersion.
	Format int `json:"format"`
	// Name is the image name (lower-case letters, digits, '.', '-').
	Name string `json:"name"`
	// Size is the size in bytes of the raw disk image; the OS disk must
	// be at least this large.
	Size int64 `json:"size"`
	// BlockSize is the granularity of the map of used blocks (4096).
	BlockSize int `json:"block_size"`
	// SHA256 is the SHA-256 of the whole raw image (Size bytes, zeros
	// where no chunk covers it).
	SHA256 string `json:"sha256"`
	// MappedBytes is the sum of the chunks' lengths: the bytes written.
	MappedBytes int64 `json:"mapped_bytes"`
	// Chunks are the image's non-zero extents in ascending, non-overlapping
	// order, each at most MaxChunk bytes.
	Chunks []Chunk `json:"chunks"`
	// Partitions is the image's partition table (GPT or MBR), as found.
	Table      string      `json:"table"`
	Partitions []Partition `json:"partitions"`
	// GrowPartition is the number of the partition the agent extends to
	// the end of the OS disk (the root file system; 0 = none).
	GrowPartition int `json:"grow_partition"`
	// BIOS is true when the image can boot on BIOS firmware: its MBR holds
	// boot code (on GPT disks GRUB's boot.img, whose core.img is in the
	// BIOS boot partition; on MBR disks any boot loader's).
	BIOS bool `json:"bios"`
	// EFILoader is the path of the UEFI loader in the EFI system
	// partition (e.g. \EFI\debian\shimx64.efi), empty when the image has
	// none; the agent adds a boot entry for it.
	EFILoader string `json:"efi_loader,omitempty"`
	// EFIPartition is the number of the EFI system partition (0 = none).
	EFIPartition int `json:"efi_partition,omitempty"`
	// EFIFiles lists every *.efi file import found in \EFI\*\ of the EFI
	// system partition, for people choosing or checking EFILoader.
	EFIFiles []string `json:"efi_files,omitempty"`
	// Source records what was imported.
	Source Source `json:"source"`
	// Imported is when `racklift image import` wrote the manifest.
	Imported time.Time `json:"imported"`
}

// MaxChunk bounds the raw length of one chunk.
const MaxChunk = 4 << 20

// Chunk is one extent of the raw image, stored as one compressed blob.
type Chunk struct {
	// Offset and Length place the chunk in the raw image (multiples of
	// BlockSize, except that the last chunk may end at Size).
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
	// SHA256 is the SHA-256 of the chunk's raw bytes.
	SHA256 string `json:"sha256"`
	// Blob is the SHA-256 of the stored (compressed) bytes: its name under
	// nodeapi.PathBlob. BlobSize is its size; Codec how it is compressed.
	Blob     string `json:"blob"`
	BlobSize int64  `json:"blob_size"`
	Codec    string `json:"codec"`
}

// Codecs of a chunk's blob.
const (
	// CodecZstd is a single zstd frame.
	CodecZstd = "zstd"
)

// Partition is one entry of the image's partition table.
type Partition struct {
	// Number is the partition number (1-based, as Linux names it).
	Number int `json:"number"`
	// Start and Size are in bytes.
	Start int64 `json:"start"`
	Size  int64 `json:"size"`
	// Type is the GPT type GUID (lower case) or the MBR type byte ("0x83").
	Type string `json:"type"`
	// Name is the GPT partition name, if any.
	Name string `json:"name,omitempty"`
}

// Source is what an image was imported from.
type Source struct {
	// File is the base name of the imported file.
	File string `json:"file"`
	// Format is what import found: "raw", "raw.gz", "raw.xz", "raw.zst"
	// or "qcow2".
	Format string `json:"format"`
	// SHA256 is the SHA-256 of the imported file's bytes.
	SHA256 string `json:"sha256"`
	// Size is its size in bytes.
	Size int64 `json:"size"`
}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,62}$`)
	hexRE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ErrInvalid is wrapped by every error of Validate and ValidateName.
var ErrInvalid = errors.New("invalid image manifest")

// ValidateName checks an image name.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("image name %q: want 1-63 lower-case letters, digits, '.' or '-': %w", name, ErrInvalid)
	}
	return nil
}

// ValidBlobName reports whether s can name a blob (64 lower-case hex digits).
func ValidBlobName(s string) bool { return hexRE.MatchString(s) }

// Validate checks that m is internally consistent: the agent runs it on
// every manifest before it writes anything.
func (m *Manifest) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), ErrInvalid)
	}
	if m.Format != FormatVersion {
		return bad("format %d, this racklift reads %d", m.Format, FormatVersion)
	}
	if err := ValidateName(m.Name); err != nil {
		return err
	}
	if m.Size <= 0 || m.BlockSize <= 0 || m.Size%512 != 0 {
		return bad("size %d / block size %d", m.Size, m.BlockSize)
	}
	if !hexRE.MatchString(m.SHA256) {
		return bad("sha256 %q", m.SHA256)
	}
	var end, mapped int64
	for i, c := range m.Chunks {
		switch {
		case c.Offset < end:
			return bad("chunk %d at %d overlaps or is out of order", i, c.Offset)
		case c.Length <= 0 || c.Length > MaxChunk:
			return bad("chunk %d length %d", i, c.Length)
		case c.Offset+c.Length > m.Size:
			return bad("chunk %d ends at %d, past the image size %d", i, c.Offset+c.Length, m.Size)
		case !hexRE.MatchString(c.SHA256) || !hexRE.MatchString(c.Blob):
			return bad("chunk %d checksum", i)
		case c.Codec != CodecZstd:
			return bad("chunk %d codec %q", i, c.Codec)
		case c.BlobSize <= 0:
			return bad("chunk %d blob size %d", i, c.BlobSize)
		}
		end = c.Offset + c.Length
		mapped += c.Length
	}
	if mapped != m.MappedBytes {
		return bad("mapped bytes %d, chunks add up to %d", m.MappedBytes, mapped)
	}
	if m.GrowPartition != 0 {
		found := false
		for _, p := range m.Partitions {
			found = found || p.Number == m.GrowPartition
		}
		if !found {
			return bad("grow partition %d is not in the partition table", m.GrowPartition)
		}
	}
	return nil
}

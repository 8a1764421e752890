package image

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Store holds imported images under STATE/images:
//
//	STATE/images/NAME/manifest.json   one per image, replaced atomically
//	STATE/images/_blobs/SHA256        compressed chunks, shared by images,
//	                                  named by the SHA-256 of their bytes,
//	                                  written once
//	STATE/images/_tmp/                imports and removals in progress
//	STATE/images/.lock                flock: imports share it, removal and
//	                                  garbage collection take it alone
//
// Image names cannot start with '_' or '.', so nothing collides. A crash
// leaves at most unreferenced blobs and temporary files, which the next
// GC (or Remove) deletes.
type Store struct {
	dir string
	// Now is the clock for Manifest.Imported (time.Now if nil).
	Now func() time.Time
	// Workers is how many chunks are hashed and compressed at once
	// (GOMAXPROCS if 0).
	Workers int
}

// ErrNotFound is wrapped by errors for an image that is not imported.
var ErrNotFound = errors.New("image not imported")

// Open opens (creating if needed) the image store in stateDir/images.
func Open(stateDir string) (*Store, error) {
	if stateDir == "" {
		return nil, errors.New("image store: no state directory")
	}
	// The state directory holds tokens and keys too: private, as
	// provision/events makes it.
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	s := &Store{dir: filepath.Join(stateDir, "images")}
	for _, d := range []string{s.dir, s.blobDir(), s.tmpDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	return s, nil
}

// Dir is the store's directory (STATE/images).
func (s *Store) Dir() string { return s.dir }

func (s *Store) blobDir() string { return filepath.Join(s.dir, "_blobs") }
func (s *Store) tmpDir() string  { return filepath.Join(s.dir, "_tmp") }

func (s *Store) blobPath(sum string) string { return filepath.Join(s.blobDir(), sum) }

func (s *Store) manifestPath(name string) string {
	return filepath.Join(s.dir, name, "manifest.json")
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Manifest returns the named image's manifest and the exact bytes stored
// (and served); their SHA-256 goes into the agent's instructions.
func (s *Store) Manifest(name string) (*Manifest, []byte, error) {
	if err := ValidateName(name); err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile(s.manifestPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("image %q: %w (racklift image import %s FILE)", name, ErrNotFound, name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("image %q: %w", name, err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, nil, fmt.Errorf("image %q: %s: %w", name, s.manifestPath(name), err)
	}
	if m.Name != name {
		return nil, nil, fmt.Errorf("image %q: %s names image %q: %w", name, s.manifestPath(name), m.Name, ErrInvalid)
	}
	return m, b, nil
}

// ParseManifest decodes and validates a manifest.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalid)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// OpenBlob opens a blob for serving (http.ServeContent). sum must be a
// blob name (64 lower-case hex digits); a missing blob wraps
// fs.ErrNotExist.
func (s *Store) OpenBlob(sum string) (*os.File, error) {
	if !ValidBlobName(sum) {
		return nil, fmt.Errorf("blob %q: not a SHA-256: %w", sum, fs.ErrNotExist)
	}
	return os.Open(s.blobPath(sum))
}

// List returns every imported image's manifest, by name. Manifests that
// cannot be read are left out and reported in the error.
func (s *Store) List() ([]*Manifest, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	var out []*Manifest
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || ValidateName(e.Name()) != nil {
			continue
		}
		m, _, err := s.Manifest(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // a directory without a manifest (an interrupted first import)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, errors.Join(errs...)
}

// GCStats says what a garbage collection removed.
type GCStats struct {
	Blobs int
	Bytes int64
}

// Remove deletes an image and then every blob no other image uses.
func (s *Store) Remove(name string) (GCStats, error) {
	if err := ValidateName(name); err != nil {
		return GCStats{}, err
	}
	unlock, err := s.lock(true)
	if err != nil {
		return GCStats{}, err
	}
	defer unlock()
	dir := filepath.Join(s.dir, name)
	if _, err := os.Stat(s.manifestPath(name)); errors.Is(err, fs.ErrNotExist) {
		return GCStats{}, fmt.Errorf("image %q: %w", name, ErrNotFound)
	}
	// Renamed away first: the image disappears at once, whatever happens next.
	gone := filepath.Join(s.tmpDir(), "remove-"+name+"-"+randHex())
	if err := os.Rename(dir, gone); err != nil {
		return GCStats{}, fmt.Errorf("remove image %q: %w", name, err)
	}
	if err := syncDir(s.dir); err != nil {
		return GCStats{}, err
	}
	if err := os.RemoveAll(gone); err != nil {
		return GCStats{}, fmt.Errorf("remove image %q: %w", name, err)
	}
	return s.gcLocked()
}

// GC deletes blobs no manifest references and leftovers of interrupted
// imports. It refuses to delete anything while a manifest cannot be read.
func (s *Store) GC() (GCStats, error) {
	unlock, err := s.lock(true)
	if err != nil {
		return GCStats{}, err
	}
	defer unlock()
	return s.gcLocked()
}

func (s *Store) gcLocked() (GCStats, error) {
	var st GCStats
	ms, err := s.List()
	if err != nil {
		return st, fmt.Errorf("not collecting blobs: %w", err)
	}
	used := map[string]bool{}
	for _, m := range ms {
		for _, c := range m.Chunks {
			used[c.Blob] = true
		}
	}
	tmp, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return st, err
	}
	for _, e := range tmp {
		if err := os.RemoveAll(filepath.Join(s.tmpDir(), e.Name())); err != nil {
			return st, err
		}
	}
	blobs, err := os.ReadDir(s.blobDir())
	if err != nil {
		return st, err
	}
	for _, e := range blobs {
		if used[e.Name()] || !ValidBlobName(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if err := os.Remove(filepath.Join(s.blobDir(), e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return st, fmt.Errorf("remove blob: %w", err)
		}
		st.Blobs++
		st.Bytes += info.Size()
	}
	return st, syncDir(s.blobDir())
}

// Fits reports whether the image fits on a disk of diskBytes; the error
// says by how much it does not ("image debian12 needs 2.0 GiB, the OS disk
// is 1.0 GiB").
func (m *Manifest) Fits(diskBytes int64) error {
	if diskBytes >= m.Size {
		return nil
	}
	return fmt.Errorf("image %s needs %s, the OS disk is %s: %w", m.Name, FormatBytes(m.Size), FormatBytes(diskBytes), ErrTooLarge)
}

// ErrTooLarge is wrapped by Fits's error.
var ErrTooLarge = errors.New("image larger than the disk")

// BlobStats returns the number of distinct blobs and their total size.
func (m *Manifest) BlobStats() (n int, bytes int64) {
	seen := map[string]bool{}
	for _, c := range m.Chunks {
		if !seen[c.Blob] {
			seen[c.Blob] = true
			n++
			bytes += c.BlobSize
		}
	}
	return n, bytes
}

// FormatBytes formats a size for people: "2.0 GiB", "64 MiB", "512 B".
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<40:
		return fmt.Sprintf("%.1f TiB", float64(n)/(1<<40))
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func randHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// syncDir makes renames and new files in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

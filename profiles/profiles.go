// Package profiles holds the OS profiles racklift can install: where the
// kernel and initrd live on the OS media, the kernel arguments, the package
// repository path, and which templates render the node's install config.
// The built-in profiles are embedded; --profiles-dir adds or overrides
// profiles by name with files of the same format.
package profiles

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed *.yaml
var builtin embed.FS

// Builtin returns the embedded profile files.
func Builtin() fs.FS { return builtin }

// Installer kinds.
const (
	InstallerKickstart   = "kickstart"
	InstallerAutoinstall = "autoinstall"
	// InstallerNone boots the kernel and initrd with no install config (a
	// rescue or test image).
	InstallerNone = "none"
)

// Profile describes one installable OS.
type Profile struct {
	// Name is how plans refer to the profile, e.g. rocky9.
	Name string `yaml:"name"`
	// Description is shown to people.
	Description string `yaml:"description"`
	// Installer is kickstart, autoinstall or none.
	Installer string `yaml:"installer"`
	// Media is the --media name whose files are served for this profile.
	Media string `yaml:"media"`
	// Kernel and Initrd are paths inside the media.
	Kernel string   `yaml:"kernel"`
	Initrd []string `yaml:"initrd"`
	// Args is a text/template for the kernel command line.
	Args string `yaml:"args"`
	// Repo is the path of the package repository inside the media ("" = media root).
	Repo string `yaml:"repo"`
	// Templates names the templates (in the templates package) to render.
	Templates map[string]string `yaml:"templates"`
}

// Set is a loaded collection of profiles.
type Set struct {
	byName map[string]*Profile
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,62}$`)

// Load reads every *.yaml file of each fs in order; a later profile with the
// same name replaces an earlier one (so --profiles-dir overrides built-ins).
func Load(fsyss ...fs.FS) (*Set, error) {
	s := &Set{byName: map[string]*Profile{}}
	for _, fsys := range fsyss {
		if fsys == nil {
			continue
		}
		names, err := fs.Glob(fsys, "*.yaml")
		if err != nil {
			return nil, fmt.Errorf("list profiles: %w", err)
		}
		for _, n := range names {
			data, err := fs.ReadFile(fsys, n)
			if err != nil {
				return nil, fmt.Errorf("read profile %s: %w", n, err)
			}
			p, err := parse(n, data)
			if err != nil {
				return nil, err
			}
			s.byName[p.Name] = p
		}
	}
	return s, nil
}

func parse(file string, data []byte) (*Profile, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Profile
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("profile %s: %w", file, err)
	}
	if p.Name == "" {
		p.Name = strings.TrimSuffix(path.Base(file), ".yaml")
	}
	if !nameRE.MatchString(p.Name) {
		return nil, fmt.Errorf("profile %s: name %q: use lower-case letters, digits, '.' and '-'", file, p.Name)
	}
	switch p.Installer {
	case InstallerKickstart, InstallerAutoinstall, InstallerNone:
	default:
		return nil, fmt.Errorf("profile %s: installer %q: want kickstart, autoinstall or none", file, p.Installer)
	}
	if p.Kernel == "" {
		return nil, fmt.Errorf("profile %s: kernel is required", file)
	}
	return &p, nil
}

// Has reports whether a profile exists.
func (s *Set) Has(name string) bool { _, ok := s.byName[name]; return ok }

// Get returns a profile by name.
func (s *Set) Get(name string) (*Profile, bool) { p, ok := s.byName[name]; return p, ok }

// Names lists the profile names in order.
func (s *Set) Names() []string {
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

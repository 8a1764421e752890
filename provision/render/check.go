package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/racklift/racklift/provision/nodeapi"
)

// outputKind says how a rendered file is checked.
type outputKind int

const (
	kindIPXE outputKind = iota
	kindKickstart
	kindCloudConfig
	kindAutoinstall
	kindYAML
	kindGRUB
	kindNetworkConfig
	kindInstructions
)

// check validates a rendered file before anyone gets it.
func check(kind outputKind, b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("not valid UTF-8")
	}
	if bytes.Contains(b, []byte("<no value>")) {
		return errors.New(`contains "<no value>" (a template used a missing value)`)
	}
	switch kind {
	case kindIPXE:
		if !bytes.HasPrefix(b, []byte("#!ipxe\n")) {
			return errors.New(`iPXE script does not start with "#!ipxe"`)
		}
	case kindKickstart:
		return checkKickstart(b)
	case kindCloudConfig, kindAutoinstall:
		if !bytes.HasPrefix(b, []byte("#cloud-config\n")) {
			return errors.New(`cloud-config does not start with "#cloud-config"`)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("cloud-config is not valid YAML: %w", err)
		}
		if kind == kindAutoinstall {
			ai, ok := doc["autoinstall"].(map[string]any)
			if !ok {
				return errors.New("user-data has no autoinstall: section")
			}
			if v, ok := ai["version"].(int); !ok || v != 1 {
				return errors.New("autoinstall: version must be 1")
			}
		}
	case kindYAML:
		var doc map[string]any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("not valid YAML: %w", err)
		}
	case kindGRUB:
		return checkGRUB(b)
	case kindNetworkConfig:
		return checkNetworkConfig(b)
	case kindInstructions:
		return checkInstructions(b)
	}
	return nil
}

// checkGRUB checks a GRUB config racklift wrote: a comment first, every
// line printable, no template text left over. (grub-script-check, the
// real parser, runs on every one in the integration tests.)
func checkGRUB(b []byte) error {
	if !bytes.HasPrefix(b, []byte("# racklift")) || !bytes.HasSuffix(b, []byte("\n")) {
		return errors.New(`GRUB config does not start with "# racklift" or does not end with a newline`)
	}
	for i, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "{{") || strings.ContainsFunc(line, func(r rune) bool { return r < 0x20 && r != '\t' }) {
			return fmt.Errorf("GRUB config line %d: template text or control characters", i+1)
		}
	}
	return nil
}

// checkNetworkConfig checks a network config version 2 document.
func checkNetworkConfig(b []byte) error {
	var doc struct {
		Version   int            `yaml:"version"`
		Ethernets map[string]any `yaml:"ethernets"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("network-config is not valid YAML: %w", err)
	}
	if doc.Version != 2 || len(doc.Ethernets) == 0 {
		return errors.New("network-config: want version: 2 with ethernets")
	}
	return nil
}

// checkInstructions checks that instructions decode as the agent decodes
// them and are complete.
func checkInstructions(b []byte) error {
	var in nodeapi.Instructions
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("instructions are not valid JSON: %w", err)
	}
	switch {
	case in.Node == "" || in.MAC == "" || in.Token == "" || in.Server == "":
		return errors.New("instructions: node, MAC, token or server missing")
	case in.Image.Name == "" || in.Image.ManifestURL == "" || len(in.Image.BlobURLs) == 0:
		return errors.New("instructions: image missing")
	case in.OSDisk == (nodeapi.DiskMatch{}):
		return errors.New("instructions: no OS disk")
	case in.Seed.UserData == "" || in.Seed.MetaData == "" || in.Seed.NetworkConfig == "":
		return errors.New("instructions: incomplete seed")
	}
	return nil
}

// kickstartSections are the sections checkKickstart knows; each ends with %end.
var kickstartSections = []string{"%pre", "%post", "%packages", "%onerror", "%pre-install", "%traceback", "%addon"}

// checkKickstart checks that sections are opened and closed properly and
// that no line has leftover template text.
func checkKickstart(b []byte) error {
	open := ""
	for i, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if strings.Contains(t, "{{") {
			return fmt.Errorf("line %d: template text left over", i+1)
		}
		if !strings.HasPrefix(t, "%") {
			continue
		}
		word, _, _ := strings.Cut(t, " ")
		switch {
		case word == "%end":
			if open == "" {
				return fmt.Errorf("line %d: %%end outside a section", i+1)
			}
			open = ""
		case word == "%include" || word == "%ksappend":
			if open != "" {
				return fmt.Errorf("line %d: %s inside %s", i+1, word, open)
			}
		case isSection(word):
			if open != "" {
				return fmt.Errorf("line %d: %s inside %s (missing %%end)", i+1, word, open)
			}
			open = word
		case open == "":
			return fmt.Errorf("line %d: unknown kickstart directive %s", i+1, word)
		}
	}
	if open != "" {
		return fmt.Errorf("section %s has no %%end", open)
	}
	return nil
}

func isSection(w string) bool {
	for _, s := range kickstartSections {
		if w == s {
			return true
		}
	}
	return false
}

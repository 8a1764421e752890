package render

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// outputKind says how a rendered file is checked.
type outputKind int

const (
	kindIPXE outputKind = iota
	kindKickstart
	kindCloudConfig
	kindAutoinstall
	kindYAML
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

package plan

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Secrets holds secret values by name: BMC passwords and the root password
// hash. They come from a secrets file (YAML map name -> value, readable only
// by its owner) and from environment variables RACKLIFT_SECRET_<NAME>, where
// NAME is upper-cased with every character other than A-Z and 0-9 turned
// into '_'. The environment wins over the file.
//
// Secrets never appear in String or fmt output.
type Secrets struct {
	file    string
	values  map[string]string
	environ func(string) (string, bool)
}

// secretNameRE is what a secret name may look like.
var secretNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// ErrSecretsPermissions is returned when the secrets file is readable by
// group or others.
var ErrSecretsPermissions = errors.New("secrets file is readable by group or others")

// LoadSecrets reads a secrets file. path may be "" for environment-only
// secrets. lookupEnv is normally os.LookupEnv (nil means no environment).
func LoadSecrets(path string, lookupEnv func(string) (string, bool)) (*Secrets, error) {
	s := &Secrets{file: path, values: map[string]string{}, environ: lookupEnv}
	if path == "" {
		return s, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open secrets: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat secrets: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: %w; run: chmod 600 %s", path, st.Mode().Perm(), ErrSecretsPermissions, path)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("secrets %s: %w", path, fs.ErrInvalid)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	var m map[string]string
	if err := yaml.Unmarshal(buf.Bytes(), &m); err != nil {
		// yaml errors can quote the offending text; never echo secret values.
		line, _ := yamlErrorLine(err)
		return nil, fmt.Errorf("%s:%d: secrets file must be a YAML map of name: value (strings)", path, line)
	}
	for k, v := range m {
		if !secretNameRE.MatchString(k) {
			return nil, fmt.Errorf("%s: secret name %q: use letters, digits, '.', '_' and '-'", path, k)
		}
		s.values[k] = v
	}
	return s, nil
}

// EnvName returns the environment variable that overrides the named secret.
func EnvName(name string) string {
	var b strings.Builder
	b.WriteString("RACKLIFT_SECRET_")
	for _, c := range strings.ToUpper(name) {
		if (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Lookup returns the value of the named secret.
func (s *Secrets) Lookup(name string) (string, bool) {
	if s == nil || name == "" {
		return "", false
	}
	if s.environ != nil {
		if v, ok := s.environ(EnvName(name)); ok {
			return v, true
		}
	}
	v, ok := s.values[name]
	return v, ok
}

// File returns the secrets file path ("" if none).
func (s *Secrets) File() string {
	if s == nil {
		return ""
	}
	return s.file
}

// String never shows values.
func (s *Secrets) String() string {
	if s == nil {
		return "secrets(none)"
	}
	return fmt.Sprintf("secrets(%s, %d values)", s.file, len(s.values))
}

// GoString never shows values.
func (s *Secrets) GoString() string { return s.String() }

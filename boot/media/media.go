package media

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// maxNameLen bounds a media name; it appears in URLs and logs.
const maxNameLen = 63

// ErrBadSpec reports a malformed NAME=PATH media specification.
var ErrBadSpec = errors.New("media: bad media spec")

// Open parses a media specification NAME=PATH (the value of a --media flag)
// and opens PATH read-only:
//
//   - a regular file is read as an ISO 9660 image (*ISO, also the closer);
//   - a directory is served through an os.Root, so neither ".." nor a
//     symbolic link can reach outside it (the closer is the *os.Root).
//
// NAME must satisfy ValidateName. The caller closes closer when done.
func Open(spec string) (name string, fsys fs.FS, closer io.Closer, err error) {
	name, p, ok := strings.Cut(spec, "=")
	if !ok {
		return "", nil, nil, fmt.Errorf("%w %q: want NAME=PATH", ErrBadSpec, spec)
	}
	if err := ValidateName(name); err != nil {
		return "", nil, nil, err
	}
	if p == "" {
		return "", nil, nil, fmt.Errorf("%w %q: empty path", ErrBadSpec, spec)
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", nil, nil, fmt.Errorf("media %s: %w", name, err)
	}
	switch {
	case st.IsDir():
		root, err := os.OpenRoot(p)
		if err != nil {
			return "", nil, nil, fmt.Errorf("media %s: %w", name, err)
		}
		return name, root.FS(), root, nil
	case st.Mode().IsRegular():
		x, err := OpenISO(p)
		if err != nil {
			return "", nil, nil, fmt.Errorf("media %s: %w", name, err)
		}
		return name, x, x, nil
	}
	return "", nil, nil, fmt.Errorf("media %s: %s is neither a directory nor a regular file", name, p)
}

// ValidateName checks a media name: 1 to 63 characters, lower-case ASCII
// letters, digits, '.' and '-', starting with a letter or digit (so "." and
// ".." are impossible and the name is safe as a URL path element).
func ValidateName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: name %q must be 1 to %d characters", ErrBadSpec, name, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '-') && i > 0:
		default:
			return fmt.Errorf("%w: name %q: want lower-case letters, digits, '.' and '-', starting with a letter or digit", ErrBadSpec, name)
		}
	}
	return nil
}

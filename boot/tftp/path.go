package tftp

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path"
	"strings"
	"unicode/utf8"
)

// errInvalidName is the client-visible reason for refusing a file name.
var errInvalidName = errors.New("invalid file name")

// request is a parsed, confined TFTP file name.
type request struct {
	// MAC is the MAC prefix in canonical lower-case colon form, or "".
	MAC string
	// File is the name to open in the served fs.FS; always fs.ValidPath.
	File string
}

// parseRequest checks a client's file name, strips and parses an optional
// "<mac>/" prefix, and returns the name to look up. Its errors wrap
// errInvalidName and hold no server detail, so they may be sent to the
// client.
func parseRequest(name string) (request, error) {
	if name == "" {
		return request{}, fmt.Errorf("%w: empty", errInvalidName)
	}
	if !utf8.ValidString(name) {
		return request{}, fmt.Errorf("%w: not UTF-8", errInvalidName)
	}
	// A leading "/" names the served root, as tftpd-hpa and dnsmasq take
	// it: Debian's signed netboot GRUB asks for "/grub/grub.cfg" (its
	// built-in prefix), shim for "/EFI/..." on some firmware. Nothing
	// outside the root can be named either way.
	name = strings.TrimLeft(name, "/")
	if name == "" {
		return request{}, fmt.Errorf("%w: no file", errInvalidName)
	}
	for _, r := range name {
		switch {
		case r == '\\':
			return request{}, fmt.Errorf("%w: backslash", errInvalidName)
		case r < 0x20 || r == 0x7f:
			return request{}, fmt.Errorf("%w: control character", errInvalidName)
		}
	}
	for el := range strings.SplitSeq(name, "/") {
		if el == ".." {
			return request{}, fmt.Errorf("%w: parent directory element", errInvalidName)
		}
	}
	clean := path.Clean("/" + name)[1:] // confined to the root even without the checks above
	if clean == "" || !fs.ValidPath(clean) {
		return request{}, fmt.Errorf("%w: no file", errInvalidName)
	}
	if prefix, rest, ok := strings.Cut(clean, "/"); ok {
		if mac, ok := parseMAC(prefix); ok {
			return request{MAC: mac, File: rest}, nil
		}
	}
	return request{File: clean}, nil
}

// parseMAC accepts a 48-bit MAC written as six hex pairs separated by ':' or
// '-' and returns it in lower-case colon form.
func parseMAC(s string) (string, bool) {
	if len(s) != len("00:00:00:00:00:00") || (s[2] != ':' && s[2] != '-') {
		return "", false
	}
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", false
	}
	return hw.String(), true
}

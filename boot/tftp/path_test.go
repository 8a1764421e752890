package tftp

import (
	"errors"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := map[string]struct {
		name    string
		want    request
		wantErr bool
	}{
		"plain":                {name: "undionly.kpxe", want: request{File: "undionly.kpxe"}},
		"nested":               {name: "pxe/snponly.efi", want: request{File: "pxe/snponly.efi"}},
		"mac colon":            {name: "52:54:00:12:34:56/undionly.kpxe", want: request{MAC: "52:54:00:12:34:56", File: "undionly.kpxe"}},
		"mac dash upper":       {name: "52-54-00-AB-CD-EF/ipxe.efi", want: request{MAC: "52:54:00:ab:cd:ef", File: "ipxe.efi"}},
		"mac then nested":      {name: "52:54:00:12:34:56/a/b.efi", want: request{MAC: "52:54:00:12:34:56", File: "a/b.efi"}},
		"mac alone is a file":  {name: "52:54:00:12:34:56", want: request{File: "52:54:00:12:34:56"}},
		"mac trailing slash":   {name: "52:54:00:12:34:56/", want: request{File: "52:54:00:12:34:56"}},
		"short mac not mac":    {name: "52:54:00:12:34/x", want: request{File: "52:54:00:12:34/x"}},
		"eui64 not mac":        {name: "52:54:00:12:34:56:78:9a/x", want: request{File: "52:54:00:12:34:56:78:9a/x"}},
		"dotted mac not mac":   {name: "5254.0012.3456/x", want: request{File: "5254.0012.3456/x"}},
		"mixed separators":     {name: "52:54-00:12:34:56/x", want: request{File: "52:54-00:12:34:56/x"}},
		"non-hex mac":          {name: "52:54:00:12:34:zz/x", want: request{File: "52:54:00:12:34:zz/x"}},
		"dot segments cleaned": {name: "./a/./b//c", want: request{File: "a/b/c"}},
		"dots in names ok":     {name: "...../x..y", want: request{File: "...../x..y"}},
		"percent literal":      {name: "%2e%2e/etc/passwd", want: request{File: "%2e%2e/etc/passwd"}},

		"empty":                 {name: "", wantErr: true},
		"only dot":              {name: ".", wantErr: true},
		"only slash dot":        {name: "./", wantErr: true},
		"dotdot":                {name: "..", wantErr: true},
		"dotdot prefix":         {name: "../etc/passwd", wantErr: true},
		"dotdot deep":           {name: "a/b/../../../etc/passwd", wantErr: true},
		"dotdot inside root":    {name: "a/../b", wantErr: true},
		"dotdot trailing":       {name: "a/..", wantErr: true},
		"mac then dotdot":       {name: "52:54:00:12:34:56/../../etc/passwd", wantErr: true},
		"absolute is the root":  {name: "/grub/grub.cfg", want: request{File: "grub/grub.cfg"}},
		"absolute double":       {name: "//etc/passwd", want: request{File: "etc/passwd"}},
		"only slashes":          {name: "//", wantErr: true},
		"absolute dotdot":       {name: "/../etc/passwd", wantErr: true},
		"backslash traversal":   {name: `..\..\windows\win.ini`, wantErr: true},
		"backslash plain":       {name: `pxe\undionly.kpxe`, wantErr: true},
		"nul":                   {name: "undionly.kpxe\x00../../etc/passwd", wantErr: true},
		"newline":               {name: "a\nb", wantErr: true},
		"del":                   {name: "a\x7fb", wantErr: true},
		"invalid utf8":          {name: "a\xffb", wantErr: true},
		"mac then absolute-ish": {name: "52:54:00:12:34:56//etc/passwd", want: request{MAC: "52:54:00:12:34:56", File: "etc/passwd"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseRequest(tc.name)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("parseRequest(%q) = %+v, want error", tc.name, got)
				}
				if !errors.Is(err, errInvalidName) {
					t.Fatalf("parseRequest(%q) error %v does not wrap errInvalidName", tc.name, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseRequest(%q): %v", tc.name, err)
			}
			if got != tc.want {
				t.Fatalf("parseRequest(%q) = %+v, want %+v", tc.name, got, tc.want)
			}
		})
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"undionly.kpxe", "52:54:00:12:34:56/x", "../x", "a/../b", `a\b`, "/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		req, err := parseRequest(name)
		if err != nil {
			return
		}
		// Whatever is accepted stays inside the root.
		if req.File == "" || req.File[0] == '/' || req.File == ".." || len(req.File) >= 3 && req.File[:3] == "../" {
			t.Fatalf("parseRequest(%q) = %+v escapes", name, req)
		}
		for i := 0; i+2 <= len(req.File); i++ {
			if req.File[i:i+2] == ".." && (i == 0 || req.File[i-1] == '/') && (i+2 == len(req.File) || req.File[i+2] == '/') {
				t.Fatalf("parseRequest(%q) = %+v has a .. element", name, req)
			}
		}
	})
}

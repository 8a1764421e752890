package initramfs

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// LibDirs are searched, in order, for a DT_NEEDED library under an
// unpacked root (Debian's multiarch directories first, as ld.so does).
var LibDirs = []string{
	"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu",
	"lib64", "usr/lib64", "lib", "usr/lib",
}

// Lib is one file an executable needs at run time.
type Lib struct {
	// Name is where the loader looks for it, relative to "/": the
	// interpreter's PT_INTERP path (lib64/ld-linux-x86-64.so.2) or
	// lib/x86_64-linux-gnu/SONAME, a directory ld.so searches by default
	// when there is no /etc/ld.so.cache.
	Name string
	// Src is the real file under the unpacked root (symlinks followed).
	Src string
}

// SharedLibs returns the interpreter and every shared library the ELF
// executables bins (paths relative to root) need, transitively, found in
// root's LibDirs. Statically linked executables need none.
func SharedLibs(root string, bins []string) ([]Lib, error) {
	var out []Lib
	seen := map[string]bool{}
	var visit func(rel string, needer string) error
	visit = func(rel, needer string) error {
		src, err := resolveIn(root, rel)
		if err != nil {
			return fmt.Errorf("%s (needed by %s): %w", rel, needer, err)
		}
		f, err := elf.Open(src)
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type != elf.PT_INTERP {
				continue
			}
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return fmt.Errorf("%s: interpreter: %w", src, err)
			}
			interp := strings.TrimPrefix(strings.TrimRight(string(b), "\x00"), "/")
			if !seen[interp] {
				seen[interp] = true
				isrc, err := resolveIn(root, interp)
				if err != nil {
					return fmt.Errorf("interpreter %s of %s: %w", interp, rel, err)
				}
				out = append(out, Lib{Name: interp, Src: isrc})
			}
		}
		needed, err := f.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		for _, so := range needed {
			name := path.Join("lib/x86_64-linux-gnu", so)
			if seen[name] {
				continue
			}
			seen[name] = true
			found := ""
			for _, d := range LibDirs {
				if p, err := resolveIn(root, path.Join(d, so)); err == nil {
					found = p
					break
				}
			}
			if found == "" {
				return fmt.Errorf("%s needs %s, which is in none of %v under %s (add the package that ships it)", rel, so, LibDirs, root)
			}
			out = append(out, Lib{Name: name, Src: found})
			relFound, err := filepath.Rel(root, found)
			if err != nil {
				return err
			}
			if err := visit(filepath.ToSlash(relFound), rel); err != nil {
				return err
			}
		}
		return nil
	}
	for _, b := range bins {
		if err := visit(strings.TrimPrefix(b, "/"), "the caller"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// resolveIn follows symlinks of rel inside root (absolute targets are
// taken relative to root, as a chroot would) and returns the real regular
// file's host path.
func resolveIn(root, rel string) (string, error) {
	cur := path.Clean("/" + rel)
	for hops := 0; hops < 40; hops++ {
		// Resolve the components one by one so a symlinked directory
		// (lib64 -> usr/lib64) is followed too.
		parts := strings.Split(strings.TrimPrefix(cur, "/"), "/")
		resolved := "/"
		changed := false
		for i, p := range parts {
			next := path.Join(resolved, p)
			host := filepath.Join(root, filepath.FromSlash(next))
			st, err := os.Lstat(host)
			if err != nil {
				return "", err
			}
			if st.Mode()&fs.ModeSymlink != 0 {
				t, err := os.Readlink(host)
				if err != nil {
					return "", err
				}
				if !path.IsAbs(t) {
					t = path.Join(resolved, t)
				}
				cur = path.Clean(path.Join(append([]string{t}, parts[i+1:]...)...))
				changed = true
				break
			}
			resolved = next
		}
		if !changed {
			host := filepath.Join(root, filepath.FromSlash(resolved))
			st, err := os.Stat(host)
			if err != nil {
				return "", err
			}
			if !st.Mode().IsRegular() {
				return "", fmt.Errorf("%s is not a regular file", resolved)
			}
			return host, nil
		}
	}
	return "", errors.New("too many levels of symbolic links")
}

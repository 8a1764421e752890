package initramfs

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Module is one loadable kernel module.
type Module struct {
	// Name is the module name with '-' written as '_' (as the kernel and
	// modprobe see it).
	Name string
	// Path is the .ko file.
	Path string
	// Deps are the modules it needs loaded first ("depends=" modinfo).
	Deps []string
}

// Modules is the result of ResolveModules.
type Modules struct {
	// Load are the modules to load, in load order (dependencies first).
	Load []Module
	// Builtin are wanted modules (or dependencies) built into the kernel.
	Builtin []string
	// Missing are wanted modules this kernel has neither as a file nor
	// built in (only with SkipMissing).
	Missing []string
}

// ResolveOptions change how ResolveModules treats what it cannot find.
type ResolveOptions struct {
	// SkipMissing lists a wanted module this kernel does not have in
	// Modules.Missing instead of failing. A missing dependency of a
	// module that exists is always an error.
	SkipMissing bool
}

// ErrCompressedModule is returned for .ko.xz/.ko.zst modules, which this
// package does not unpack.
var ErrCompressedModule = errors.New("compressed kernel modules are not supported")

func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// ResolveModules finds the wanted modules under modDir
// (lib/modules/<release> of an unpacked linux-image package) and adds
// their dependencies, read from each module's ".modinfo" ELF section
// ("depends=a,b"), which is what depmod writes into modules.dep. Modules
// listed in modDir/modules.builtin are built into the kernel and need no
// file. The result is in load order: dependencies first, otherwise in the
// order of want.
func ResolveModules(modDir string, want []string, opt ResolveOptions) (Modules, error) {
	index := map[string]string{} // module name -> path
	var compressed []string
	err := filepath.WalkDir(modDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		switch n := d.Name(); {
		case strings.HasSuffix(n, ".ko"):
			index[modName(strings.TrimSuffix(n, ".ko"))] = p
		case strings.HasSuffix(n, ".ko.xz"), strings.HasSuffix(n, ".ko.zst"), strings.HasSuffix(n, ".ko.gz"):
			compressed = append(compressed, p)
		}
		return nil
	})
	if err != nil {
		return Modules{}, err
	}
	if len(index) == 0 && len(compressed) > 0 {
		return Modules{}, fmt.Errorf("%s: %w (e.g. %s)", modDir, ErrCompressedModule, compressed[0])
	}
	builtin, err := readBuiltin(filepath.Join(modDir, "modules.builtin"))
	if err != nil {
		return Modules{}, err
	}
	var out Modules
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, wanted bool) error
	visit = func(name string, wanted bool) error {
		name = modName(name)
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", name)
		case 2:
			return nil
		}
		p, ok := index[name]
		if !ok {
			state[name] = 2
			switch {
			case builtin[name]:
				out.Builtin = append(out.Builtin, name)
				return nil
			case wanted && opt.SkipMissing:
				out.Missing = append(out.Missing, name)
				return nil
			}
			return fmt.Errorf("module %s not found under %s (neither a .ko file nor in modules.builtin)", name, modDir)
		}
		state[name] = 1
		deps, err := moduleDeps(p)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, false); err != nil {
				return fmt.Errorf("%s needs %w", name, err)
			}
		}
		state[name] = 2
		out.Load = append(out.Load, Module{Name: name, Path: p, Deps: deps})
		return nil
	}
	for _, w := range want {
		if err := visit(w, true); err != nil {
			return Modules{}, err
		}
	}
	return out, nil
}

// readBuiltin reads modules.builtin ("kernel/fs/ext4/ext4.ko" per line) as
// a set of module names. A missing file means none.
func readBuiltin(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	set := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		base := filepath.Base(line)
		set[modName(strings.TrimSuffix(base, ".ko"))] = true
	}
	return set, sc.Err()
}

// moduleDeps reads "depends=" from a .ko file's .modinfo section.
func moduleDeps(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("%s: no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}

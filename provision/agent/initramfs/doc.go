// Package initramfs builds Linux initramfs images from Debian packages:
// it writes cpio archives in the "newc" format the kernel unpacks, finds
// kernel modules and their dependencies the way depmod does, finds the
// shared libraries an executable needs, and fetches Debian packages
// through the machine's own apt configuration.
//
// It is the one place this logic lives: racklift's deploy agent
// (hack/agent builds its base initramfs; provision/agent/bundle appends
// the racklift binary as a second archive when it serves the agent) and
// the test bed's payload (hack/testbed) both use it.
//
// # newc cpio
//
// Linux unpacks an initramfs from one or more concatenated cpio archives,
// each optionally compressed (Documentation/driver-api/early-userspace/
// buffer-format.rst): "initramfs := ("\0" | cpio_archive |
// cpio_compressed_archive)*". A later archive's files are added to (and
// replace) the earlier ones' in the root file system, which is how the
// agent's base archive and the racklift binary are served as two parts.
//
// # Kernel modules
//
// Debian's linux-image package ships the modules and modules.builtin but
// not modules.dep (depmod builds it when the package is installed).
// ResolveModules reads each module's ".modinfo" ELF section
// ("depends=a,b"), which is what depmod turns into modules.dep, and
// returns the modules in load order (dependencies first). Modules that are
// built into the kernel (modules.builtin) need no file.
//
// # Debian packages
//
// Download fetches packages with `apt-get download` (the sources, proxy
// and keys are the machine's own; nothing is hard-coded) into a cache
// directory, keyed by the version apt would install, and Unpack extracts
// them with `dpkg-deb -x`. Nothing is installed on the host, and the
// host's /boot is never read.
package initramfs

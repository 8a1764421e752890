package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// LinuxSystem is System on a node.
type LinuxSystem struct{}

// Mount mounts dev at dir.
func (LinuxSystem) Mount(dev, dir, fstype string) error {
	return unix.Mount(dev, dir, fstype, 0, "")
}

// Unmount syncs and unmounts dir.
func (LinuxSystem) Unmount(dir string) error {
	unix.Sync()
	return unix.Unmount(dir, 0)
}

// MountEFIVars mounts efivarfs at sysRoot/firmware/efi/efivars unless it
// is mounted (EBUSY).
func (LinuxSystem) MountEFIVars(sysRoot string) error {
	dir := filepath.Join(sysRoot, "firmware", "efi", "efivars")
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("no %s (efivarfs module not loaded, or not booted in UEFI mode): %w", dir, err)
	}
	err := unix.Mount("efivarfs", dir, "efivarfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	if err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("mount efivarfs on %s: %w", dir, err)
	}
	return nil
}

// Reboot syncs and restarts the machine.
func (LinuxSystem) Reboot() error {
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
}

// PowerOff syncs and powers the machine off.
func (LinuxSystem) PowerOff() error {
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// Uptime reads /proc/uptime.
func Uptime() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	s, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(s * float64(time.Second)), true
}

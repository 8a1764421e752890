//go:build linux

package testbed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Firmware is a VM's firmware.
type Firmware int

// Firmwares.
const (
	// BIOS is SeaBIOS (QEMU "pc"); the NIC's option ROM is iPXE.
	BIOS Firmware = iota
	// UEFI is OVMF on q35 with its own PXE client (no NIC option ROM),
	// which fetches an EFI binary (snponly.efi) by TFTP.
	UEFI
	// SecureBoot is UEFI with Secure Boot enforced: OVMF's secboot build
	// (SMM, secure pflash) with Microsoft's keys enrolled in a copy of
	// OVMF_VARS_4M.ms.fd, so Debian's signed shim is trusted and unsigned
	// binaries (iPXE) are refused.
	SecureBoot
)

func (f Firmware) String() string {
	switch f {
	case UEFI:
		return "uefi"
	case SecureBoot:
		return "uefi-secureboot"
	}
	return "bios"
}

// IsUEFI reports whether the firmware is OVMF (with or without Secure Boot).
func (f Firmware) IsUEFI() bool { return f == UEFI || f == SecureBoot }

// Firmware and ROM files (Debian ovmf, ipxe-qemu).
var (
	OVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	// OVMFSecureCode and OVMFSecureVars are the Secure Boot build and a
	// variable store with Microsoft's keys enrolled (Debian ovmf).
	OVMFSecureCode = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	OVMFSecureVars = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
	// VirtioROM and E1000ROM are the BIOS iPXE option ROMs; empty means
	// the first of ROMDirs that has pxe-virtio.rom / pxe-e1000.rom.
	VirtioROM, E1000ROM string
	// ROMDirs are searched for QEMU NIC ROMs. Debian 12's ipxe-qemu
	// installs them in /usr/lib/ipxe/qemu; some QEMU packages link them
	// from /usr/share/qemu.
	ROMDirs       = []string{"/usr/share/qemu", "/usr/lib/ipxe/qemu"}
	QEMUBinary    = "qemu-system-x86_64"
	sercon        = []byte{0xf8, 0x03} // SeaBIOS etc/sercon-port = 0x3f8 (COM1), little-endian
	defaultMemMB  = 512
	qmpCmdTimeout = 10 * time.Second
	// qmpReadyTimeout bounds the wait for QEMU's QMP socket to accept a
	// connection after start (a slow or loaded machine parses options and
	// sets up the machine for seconds before it listens).
	qmpReadyTimeout = 30 * time.Second
)

// VMOptions describe a VM. Zero values are sensible defaults.
type VMOptions struct {
	// Name names the VM in file names and QEMU's -name ("vm" if empty).
	Name string
	// MAC of the NIC; empty derives 52:54:00:99:xx:xx from Name.
	MAC string
	// Firmware is BIOS (default) or UEFI.
	Firmware Firmware
	// NIC is "virtio" (default) or "e1000" (BIOS only: OVMF has no e1000
	// driver).
	NIC string
	// DiskPath attaches this raw image as a virtio disk (/dev/vda in the
	// guest); it is created with DiskMB (default 64) MiB if missing, so a
	// second VM can boot the disk the first one installed.
	DiskPath string
	// DiskMB > 0 without DiskPath attaches a new zero-filled (sparse) raw
	// disk of that size in Dir. No DiskPath and no DiskMB: diskless.
	DiskMB int
	// DiskSerial is the first disk's serial number (virtio-blk serial=,
	// /dev/disk/by-id/virtio-SERIAL in the guest); empty: none.
	DiskSerial string
	// Disks are more virtio disks after the first (vdb, vdc, ...), never
	// in the boot order.
	Disks []Disk
	// HostMTU, when > 0, is the largest MTU the boot NIC offers the guest
	// (virtio-net host_mtu): the guest cannot raise its MTU above it.
	HostMTU int
	// NICs are more NICs after the boot NIC, each on its own tap in br0,
	// never in the boot order and without an option ROM.
	NICs []NIC
	// BootDisk boots the first disk before the NIC (an installed system
	// or an OS image, without waiting for a PXE attempt to time out).
	BootDisk bool
	// NoReboot makes a guest reboot end QEMU (-no-reboot). Leave it false
	// when a BMC simulator resets the VM through QMP.
	NoReboot bool
	// TapName is the tap device (created in the namespace if missing);
	// empty means "tap-" + a hash of Name.
	TapName string
	// MemMB is the guest memory (default 512).
	MemMB int
	// VarsPath is the UEFI variable store (copied from OVMFVars if
	// missing); empty means a fresh copy in Dir.
	VarsPath string
	// Kernel, Initrd and Append boot a kernel directly (-kernel), skipping
	// the network boot; for checking payloads quickly.
	Kernel, Initrd, Append string
	// Dir holds the serial log, UEFI variables and disks; empty means
	// $RACKLIFT_TESTBED_KEEP/<test name> when that is set (kept after the
	// test, for debugging), else t.TempDir().
	Dir string
	// ExtraArgs are appended to QEMU's command line.
	ExtraArgs []string
}

// Disk is an extra virtio disk of a VM.
type Disk struct {
	// Path is a raw image, created with SizeMB MiB (sparse) if missing;
	// empty means Dir/<vm>-<Serial or index>.raw.
	Path   string
	SizeMB int
	// Serial is the disk's serial number (by-id virtio-SERIAL).
	Serial string
}

// NIC is an extra NIC of a VM.
type NIC struct {
	// MAC of the NIC; empty derives one from the VM's name and index.
	MAC string
	// TapName is its tap in br0 (created if missing); empty derives one.
	TapName string
	// HostMTU, when > 0, caps the guest's MTU (virtio-net host_mtu).
	HostMTU int
}

// VM is a running QEMU process in a Netns.
type VM struct {
	Opts VMOptions
	// Started is when QEMU was started (power on).
	Started time.Time
	// SerialPath is the serial console log (COM1).
	SerialPath string
	// QMPPath is the QMP unix socket.
	QMPPath string
	// DiskPath is the attached disk image, if any.
	DiskPath string
	// DiskPaths are the extra disks' images (Opts.Disks), in order.
	DiskPaths []string
	// NICMACs are the extra NICs' MACs (Opts.NICs), in order.
	NICMACs []string
	// Args is QEMU's command line (without the `ip netns exec` prefix).
	Args []string

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	exited  time.Time
	mu      sync.Mutex

	lineMu   sync.Mutex
	lines    []SerialLine
	partial  []byte
	watchEnd chan struct{}
}

// SerialLine is one serial console line and when it was first seen
// (since power on, 50 ms resolution).
type SerialLine struct {
	At   time.Duration
	Text string
}

// StartVM starts QEMU (TCG) in ns with its NIC on a tap enslaved to br0,
// the serial console written to a file, and a QMP socket. The VM is killed
// by PID when the test ends; if the test failed, the tail of its serial log
// is logged.
func StartVM(t testing.TB, ns *Netns, opts VMOptions) *VM {
	t.Helper()
	vm, err := startVM(t, ns, opts)
	if err != nil {
		t.Fatalf("testbed: start VM %s: %v", opts.Name, err)
	}
	return vm
}

func startVM(t testing.TB, ns *Netns, o VMOptions) (*VM, error) {
	if o.Name == "" {
		o.Name = "vm"
	}
	sum := sha256.Sum256([]byte(ns.Name + "/" + o.Name))
	if o.MAC == "" {
		o.MAC = fmt.Sprintf("52:54:00:99:%02x:%02x", sum[0], sum[1])
	}
	if o.TapName == "" {
		o.TapName = fmt.Sprintf("tap-%x", sum[2:5])
	}
	if o.NIC == "" {
		o.NIC = "virtio"
	}
	if o.MemMB == 0 {
		o.MemMB = defaultMemMB
	}
	if o.Dir == "" {
		if keep := os.Getenv("RACKLIFT_TESTBED_KEEP"); keep != "" {
			o.Dir = filepath.Join(keep, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
			if err := os.MkdirAll(o.Dir, 0o755); err != nil {
				return nil, err
			}
		} else {
			o.Dir = t.TempDir()
		}
	}
	if !ns.HasLink(o.TapName) {
		if err := ns.AddTap(o.TapName); err != nil {
			return nil, err
		}
	}
	vm := &VM{Opts: o, SerialPath: filepath.Join(o.Dir, o.Name+"-serial.log"), done: make(chan struct{})}
	// A unix socket path is limited to 108 bytes; t.TempDir() can be longer.
	qmpDir, err := os.MkdirTemp("", "rlqmp")
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { os.RemoveAll(qmpDir) })
	vm.QMPPath = filepath.Join(qmpDir, "qmp.sock")
	if err := os.WriteFile(vm.SerialPath, nil, 0o644); err != nil {
		return nil, err
	}

	args := []string{
		"-name", o.Name,
		"-accel", "tcg",
		"-m", fmt.Sprint(o.MemMB),
		"-smp", "1",
		"-nographic", "-monitor", "none", "-vga", "none",
		"-chardev", "file,id=ser0,path=" + vm.SerialPath,
		"-serial", "chardev:ser0",
		"-qmp", "unix:" + vm.QMPPath + ",server=on,wait=off",
		"-netdev", "tap,id=n0,ifname=" + o.TapName + ",script=no,downscript=no",
	}
	if o.NoReboot {
		args = append(args, "-no-reboot")
	}
	nic := ""
	mtu := ""
	nicBoot, diskBoot := ",bootindex=1", ",bootindex=2"
	if o.BootDisk {
		nicBoot, diskBoot = ",bootindex=2", ",bootindex=1"
	}
	if o.HostMTU > 0 {
		if o.NIC != "virtio" {
			return nil, fmt.Errorf("HostMTU needs NIC virtio, not %s", o.NIC)
		}
		mtu = fmt.Sprintf(",host_mtu=%d", o.HostMTU)
	}
	switch {
	case o.Firmware.IsUEFI() && o.NIC != "virtio":
		return nil, fmt.Errorf("UEFI needs NIC virtio (OVMF has no %s driver)", o.NIC)
	case o.Firmware.IsUEFI():
		// romfile= empty: no iPXE ROM, OVMF's own virtio-net driver and PXE client.
		nic = "virtio-net-pci,netdev=n0,mac=" + o.MAC + mtu + ",romfile=" + nicBoot
	case o.NIC == "virtio":
		rom, err := findROM(VirtioROM, "pxe-virtio.rom")
		if err != nil {
			return nil, err
		}
		// disable-legacy=on: Debian's pxe-virtio.rom carries PCI id 1af4:1041
		// (modern virtio); SeaBIOS silently skips it on a transitional device.
		nic = "virtio-net-pci,disable-legacy=on,netdev=n0,mac=" + o.MAC + mtu + ",romfile=" + rom + nicBoot
	case o.NIC == "e1000":
		rom, err := findROM(E1000ROM, "pxe-e1000.rom")
		if err != nil {
			return nil, err
		}
		nic = "e1000,netdev=n0,mac=" + o.MAC + ",romfile=" + rom + nicBoot
	default:
		return nil, fmt.Errorf("unknown NIC %q", o.NIC)
	}
	if o.Firmware.IsUEFI() {
		code, varsTemplate, machine := OVMFCode, OVMFVars, "q35"
		if o.Firmware == SecureBoot {
			code, varsTemplate, machine = OVMFSecureCode, OVMFSecureVars, "q35,smm=on"
		}
		vars := o.VarsPath
		if vars == "" {
			vars = filepath.Join(o.Dir, o.Name+"-OVMF_VARS.fd")
		}
		if !fileExists(vars) {
			if err := copyFile(varsTemplate, vars); err != nil {
				return nil, err
			}
		}
		args = append(args, "-machine", machine)
		if o.Firmware == SecureBoot {
			// The variable store is writable only from SMM: the guest OS
			// cannot turn Secure Boot off behind the firmware's back.
			args = append(args, "-global", "driver=cfi.pflash01,property=secure,value=on")
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
			"-drive", "if=pflash,format=raw,unit=1,file="+vars)
	} else {
		args = append(args, "-machine", "pc")
		// SeaBIOS serial console: BIOS and iPXE text output go to COM1 too.
		sc := filepath.Join(o.Dir, "sercon-port")
		if err := os.WriteFile(sc, sercon, 0o644); err != nil {
			return nil, err
		}
		args = append(args, "-fw_cfg", "name=etc/sercon-port,file="+sc)
	}
	args = append(args, "-device", nic)
	disk := o.DiskPath
	if disk == "" && o.DiskMB > 0 {
		disk = filepath.Join(o.Dir, o.Name+"-disk.raw")
	}
	if disk != "" {
		mb := o.DiskMB
		if mb <= 0 {
			mb = 64
		}
		if err := ensureDisk(disk, mb); err != nil {
			return nil, err
		}
		vm.DiskPath = disk
		serial := ""
		if o.DiskSerial != "" {
			serial = ",serial=" + o.DiskSerial
		}
		args = append(args, "-drive", "if=none,id=d0,format=raw,file="+disk,
			"-device", "virtio-blk-pci,drive=d0"+serial+diskBoot)
	}
	for i, d := range o.Disks {
		path := d.Path
		if path == "" {
			tag := d.Serial
			if tag == "" {
				tag = fmt.Sprint(i + 1)
			}
			path = filepath.Join(o.Dir, o.Name+"-disk-"+tag+".raw")
		}
		mb := d.SizeMB
		if mb <= 0 {
			mb = 64
		}
		if err := ensureDisk(path, mb); err != nil {
			return nil, err
		}
		vm.DiskPaths = append(vm.DiskPaths, path)
		serial := ""
		if d.Serial != "" {
			serial = ",serial=" + d.Serial
		}
		id := fmt.Sprintf("dx%d", i)
		args = append(args, "-drive", "if=none,id="+id+",format=raw,file="+path,
			"-device", "virtio-blk-pci,drive="+id+serial)
	}
	for i, n := range o.NICs {
		mac, tap := n.MAC, n.TapName
		if mac == "" {
			mac = fmt.Sprintf("52:54:00:98:%02x:%02x", sum[0], byte(int(sum[1])+i+1))
		}
		if tap == "" {
			tap = fmt.Sprintf("tap-%x-%d", sum[2:4], i+1)
		}
		if !ns.HasLink(tap) {
			if err := ns.AddTap(tap); err != nil {
				return nil, err
			}
		}
		mtu := ""
		if n.HostMTU > 0 {
			mtu = fmt.Sprintf(",host_mtu=%d", n.HostMTU)
		}
		id := fmt.Sprintf("nx%d", i)
		vm.NICMACs = append(vm.NICMACs, mac)
		args = append(args, "-netdev", "tap,id="+id+",ifname="+tap+",script=no,downscript=no",
			"-device", "virtio-net-pci,netdev="+id+",mac="+mac+mtu+",romfile=")
	}
	if o.Kernel != "" {
		args = append(args, "-kernel", o.Kernel, "-append", o.Append)
		if o.Initrd != "" {
			args = append(args, "-initrd", o.Initrd)
		}
	}
	args = append(args, o.ExtraArgs...)
	vm.Args = args

	// Not bound to a context: the VM lives until Kill, power off, or the
	// test's cleanup (which kills it by PID).
	vm.cmd = ns.Run(context.Background(), QEMUBinary, args...)
	stderr := &tailBuffer{max: 8 << 10}
	vm.cmd.Stdout, vm.cmd.Stderr = stderr, stderr
	if err := vm.cmd.Start(); err != nil {
		return nil, err
	}
	vm.Started = time.Now()
	go func() {
		err := vm.cmd.Wait()
		vm.mu.Lock()
		vm.exited = time.Now()
		if err != nil && stderr.String() != "" {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
		}
		vm.waitErr = err
		vm.mu.Unlock()
		close(vm.done)
	}()
	// Wait until QMP accepts a connection: QEMU has parsed its options and
	// set up the machine (bad options make it exit here instead). The
	// socket file appearing is not enough: QEMU binds it before it listens,
	// and a connect in between is refused.
	rctx, rcancel := context.WithTimeout(context.Background(), qmpReadyTimeout)
	c, err := dialUnixReady(rctx, vm.QMPPath, vm.done)
	rcancel()
	if err != nil {
		vm.Kill()
		if exitErr := vm.exitErr(); exitErr != nil {
			return nil, fmt.Errorf("qemu exited at start: %v", exitErr)
		}
		return nil, fmt.Errorf("qemu's QMP socket %s: %w; qemu stderr: %s", vm.QMPPath, err, strings.TrimSpace(stderr.String()))
	}
	c.Close()
	vm.watchEnd = make(chan struct{})
	go vm.watchSerial()
	t.Cleanup(func() {
		vm.Kill()
		if t.Failed() {
			log := vm.SerialLog()
			if len(log) > 4000 {
				log = "..." + log[len(log)-4000:]
			}
			t.Logf("testbed: VM %s serial log tail:\n%s", o.Name, log)
		}
	})
	return vm, nil
}

// findROM returns explicit if set, else the first ROMDirs/name that exists.
func findROM(explicit, name string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	for _, d := range ROMDirs {
		if p := filepath.Join(d, name); fileExists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("no %s in %v (Debian package ipxe-qemu)", name, ROMDirs)
}

// watchSerial timestamps serial lines as they appear, until QEMU exits.
func (vm *VM) watchSerial() {
	defer close(vm.watchEnd)
	f, err := os.Open(vm.SerialPath)
	if err != nil {
		return
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		exited := false
		select {
		case <-vm.done:
			exited = true
		case <-tick.C:
		}
		for {
			n, _ := f.Read(buf)
			if n == 0 {
				break
			}
			vm.addSerial(buf[:n], time.Since(vm.Started))
		}
		if exited {
			vm.addSerial([]byte("\n"), time.Since(vm.Started))
			return
		}
	}
}

func (vm *VM) addSerial(b []byte, at time.Duration) {
	vm.lineMu.Lock()
	defer vm.lineMu.Unlock()
	vm.partial = append(vm.partial, b...)
	for {
		i := bytes.IndexByte(vm.partial, '\n')
		if i < 0 {
			return
		}
		line := strings.TrimRight(string(vm.partial[:i]), "\r")
		vm.partial = vm.partial[i+1:]
		if line != "" {
			vm.lines = append(vm.lines, SerialLine{At: at, Text: line})
		}
	}
}

// Timeline returns the complete serial lines so far with the time each
// was first seen. Useful for boot-time breakdowns.
func (vm *VM) Timeline() []SerialLine {
	vm.lineMu.Lock()
	defer vm.lineMu.Unlock()
	return append([]SerialLine(nil), vm.lines...)
}

// PID is QEMU's process id.
func (vm *VM) PID() int { return vm.cmd.Process.Pid }

// SerialLog returns the serial console output so far.
func (vm *VM) SerialLog() string {
	b, _ := os.ReadFile(vm.SerialPath)
	return string(b)
}

// WaitSerial waits until the serial log contains substr. It returns early
// with an error if ctx ends or QEMU exits without printing it.
func (vm *VM) WaitSerial(ctx context.Context, substr string) error {
	_, err := vm.WaitSerialTime(ctx, substr)
	return err
}

// WaitSerialTime is WaitSerial that also returns the time since power on
// (Started) at which substr was first seen (50 ms resolution).
func (vm *VM) WaitSerialTime(ctx context.Context, substr string) (time.Duration, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if strings.Contains(vm.SerialLog(), substr) {
			return time.Since(vm.Started), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(vm.Started), fmt.Errorf("VM %s: waiting for %q on serial: %w", vm.Opts.Name, substr, ctx.Err())
		case <-vm.done:
			if strings.Contains(vm.SerialLog(), substr) {
				return time.Since(vm.Started), nil
			}
			return time.Since(vm.Started), fmt.Errorf("VM %s exited (%v) before %q appeared on serial", vm.Opts.Name, vm.exitErr(), substr)
		case <-tick.C:
		}
	}
}

// Wait waits for QEMU to exit (guest power off, or reboot with NoReboot)
// and returns its exit error (nil for a clean power off).
func (vm *VM) Wait(ctx context.Context) error {
	select {
	case <-vm.done:
		return vm.exitErr()
	case <-ctx.Done():
		return fmt.Errorf("VM %s: waiting for exit: %w", vm.Opts.Name, ctx.Err())
	}
}

// Exited reports whether QEMU has exited, and when (time since power on).
func (vm *VM) Exited() (time.Duration, bool) {
	select {
	case <-vm.done:
		vm.mu.Lock()
		defer vm.mu.Unlock()
		return vm.exited.Sub(vm.Started), true
	default:
		return 0, false
	}
}

// CPUTime is the CPU time (user + system) QEMU used, known once it has
// exited (0 before). Compare it with the wall time to see how much a boot
// was slowed by other load on the machine.
func (vm *VM) CPUTime() time.Duration {
	select {
	case <-vm.done:
	default:
		return 0
	}
	ps := vm.cmd.ProcessState
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

func (vm *VM) exitErr() error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.waitErr
}

// Kill SIGKILLs QEMU (by PID) if it is running and waits for it.
func (vm *VM) Kill() {
	select {
	case <-vm.done:
		return
	default:
	}
	_ = killGroup(vm.cmd.Process)
	select {
	case <-vm.done:
	case <-time.After(10 * time.Second):
	}
}

// QMP runs one QMP command (e.g. "system_reset", "quit", "query-status")
// with optional arguments and returns its "return" value. Each call opens
// its own connection (greeting, qmp_capabilities, command); events are
// skipped. Bounded by 10 s.
func (vm *VM) QMP(cmd string, args ...map[string]any) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), qmpCmdTimeout)
	defer cancel()
	c, err := dialUnixReady(ctx, vm.QMPPath, vm.done)
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	r := bufio.NewReader(c)
	type reply struct {
		QMP    json.RawMessage `json:"QMP"`
		Return json.RawMessage `json:"return"`
		Error  *struct {
			Class string `json:"class"`
			Desc  string `json:"desc"`
		} `json:"error"`
		Event string `json:"event"`
	}
	read := func() (*reply, error) {
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return nil, err
			}
			var m reply
			if err := json.Unmarshal(line, &m); err != nil {
				return nil, fmt.Errorf("bad QMP line %q: %w", line, err)
			}
			if m.Event != "" {
				continue
			}
			return &m, nil
		}
	}
	if _, err := read(); err != nil { // greeting
		return nil, fmt.Errorf("qmp greeting: %w", err)
	}
	send := func(name string, a map[string]any) (json.RawMessage, error) {
		req := map[string]any{"execute": name}
		if a != nil {
			req["arguments"] = a
		}
		b, _ := json.Marshal(req)
		if _, err := c.Write(append(b, '\n')); err != nil {
			return nil, err
		}
		m, err := read()
		if err != nil {
			return nil, err
		}
		if m.Error != nil {
			return nil, fmt.Errorf("qmp %s: %s: %s", name, m.Error.Class, m.Error.Desc)
		}
		return m.Return, nil
	}
	if _, err := send("qmp_capabilities", nil); err != nil {
		return nil, err
	}
	var a map[string]any
	if len(args) > 0 {
		a = args[0]
	}
	ret, err := send(cmd, a)
	if err != nil && cmd == "quit" && (errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "EOF")) {
		return nil, nil // QEMU may close before answering quit
	}
	return ret, err
}

// dialUnixReady connects to a unix socket that may not be listening yet:
// a missing file (ENOENT) and a refused connection (ECONNREFUSED: bound,
// not yet listening) are retried with a growing pause until ctx ends or
// gone is closed (the server process exited). Any other error is returned
// at once.
func dialUnixReady(ctx context.Context, path string, gone <-chan struct{}) (net.Conn, error) {
	var d net.Dialer
	pause := 5 * time.Millisecond
	for attempt := 1; ; attempt++ {
		c, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ENOENT) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("not accepting connections after %d attempts: %w (last: %v)", attempt, ctx.Err(), err)
		case <-gone:
			return nil, fmt.Errorf("the process exited before it accepted a connection (last: %v)", err)
		case <-time.After(pause):
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
}

// ensureDisk creates a sparse raw image of mb MiB at path if it is missing.
func ensureDisk(path string, mb int) error {
	if fileExists(path) {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = f.Truncate(int64(mb) << 20)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// DiskHead returns the first n bytes of the VM's disk image.
func (vm *VM) DiskHead(n int) ([]byte, error) {
	if vm.DiskPath == "" {
		return nil, errors.New("VM has no disk")
	}
	f, err := os.Open(vm.DiskPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := f.ReadAt(b, 0)
	if k == n {
		err = nil
	}
	return b[:k], err
}

// tailBuffer keeps the last max bytes written (QEMU's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

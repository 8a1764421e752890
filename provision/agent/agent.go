package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/racklift/racklift/provision/image"
	"github.com/racklift/racklift/provision/nodeapi"
)

// Steps of an install, as CallbackBody.Step names them.
const (
	StepDisk       = "disk"
	StepImage      = "image"
	StepGrow       = "grow"
	StepSeed       = "seed"
	StepOSDWipe    = "osd-wipe"
	StepBootloader = "bootloader"
	StepReboot     = "reboot"
	// StepInstructions and StepManifest come before the image is written.
	StepInstructions = "instructions"
	StepManifest     = "manifest"
)

// Console markers: one line each, for people at the console and for tests.
const (
	MarkerPrefix       = "RACKLIFT-AGENT: "
	MarkerStart        = MarkerPrefix + "start"
	MarkerInstructions = MarkerPrefix + "instructions fetched"
	MarkerWritten      = MarkerPrefix + "image written"
	MarkerBootEntries  = MarkerPrefix + "efibootmgr -v"
	MarkerInstalled    = MarkerPrefix + "installed"
	MarkerError        = MarkerPrefix + "error: "
)

// Timeouts bound each step. Zero values are the defaults.
type Timeouts struct {
	// Instructions: fetching the instructions, retries included (5 min).
	Instructions time.Duration
	// Disks: waiting for the planned disks to appear (60 s): controllers
	// and their drivers may take a while to find their disks.
	Disks time.Duration
	// Manifest: fetching the manifest, retries included (2 min).
	Manifest time.Duration
	// ImageMin and ImageRate: writing the image may take ImageMin (15
	// min) plus the image size at ImageRate bytes/s (1 MB/s): the bound
	// for the slowest link that is still working.
	ImageMin  time.Duration
	ImageRate int64
	// Step: each other step (grow, seed, wipe, boot entry) (3 min).
	Step time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Instructions, 5*time.Minute)
	def(&t.Disks, 60*time.Second)
	def(&t.Manifest, 2*time.Minute)
	def(&t.ImageMin, 15*time.Minute)
	def(&t.Step, 3*time.Minute)
	if t.ImageRate <= 0 {
		t.ImageRate = 1e6
	}
	return t
}

// Config is what Run needs. Zero values are the defaults of a node.
type Config struct {
	// Cmdline holds the kernel arguments (ParseCmdline).
	Cmdline Cmdline
	// Version is the racklift version, printed at start.
	Version string
	// SysRoot and DevRoot are where sysfs and the device nodes are
	// ("/sys", "/dev").
	SysRoot, DevRoot string
	// MountDir is where the installed root file system is mounted to
	// write the seed ("/run/racklift/root").
	MountDir string
	// HTTP is the client (NewHTTPClient).
	HTTP *http.Client
	// Log receives operational messages (never the token or the seed).
	Log *slog.Logger
	// Console receives the marker lines ("RACKLIFT-AGENT: ...") and the
	// boot table (os.Stdout, the console on a node).
	Console io.Writer
	// Timeouts bound each step.
	Timeouts Timeouts
	// ProgressInterval is the time between progress callbacks (5 s).
	ProgressInterval time.Duration
	// Run runs programs (efibootmgr); default os/exec.
	Run Runner
	// Sys performs the system calls that need a real node (mount,
	// reboot); default LinuxSystem.
	Sys System
	// Uptime returns the time since the kernel started (/proc/uptime),
	// printed with the markers; nil prints none.
	Uptime func() (time.Duration, bool)
}

// System is what the agent does to the node besides writing disks.
type System interface {
	// Mount mounts the file system of dev (type fstype) at dir.
	Mount(dev, dir, fstype string) error
	// Unmount unmounts dir.
	Unmount(dir string) error
	// MountEFIVars mounts efivarfs at SYSROOT/firmware/efi/efivars if it
	// is not mounted.
	MountEFIVars(sysRoot string) error
	// Reboot syncs and restarts the machine; PowerOff syncs and powers
	// it off. Neither returns on success.
	Reboot() error
	PowerOff() error
}

// stepError is an install failure in a named step.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func inStep(step string, err error) error {
	if err == nil {
		return nil
	}
	return &stepError{step: step, err: err}
}

// StepOf returns the step an error of Run happened in ("" if none).
func StepOf(err error) string {
	var se *stepError
	if errors.As(err, &se) {
		return se.step
	}
	return ""
}

// agent is one run.
type agent struct {
	cfg    Config
	t      Timeouts
	client *Client
	rep    *Reporter
	log    *slog.Logger
}

func (a *agent) say(format string, args ...any) {
	line := MarkerPrefix + fmt.Sprintf(format, args...)
	if a.cfg.Uptime != nil {
		if up, ok := a.cfg.Uptime(); ok {
			line += fmt.Sprintf(" uptime=%.1fs", up.Seconds())
		}
	}
	fmt.Fprintln(a.cfg.Console, line)
}

func (a *agent) progress(step string, pct int, detail string) {
	a.log.Info(detail, "step", step)
	a.rep.ProgressAsync(nodeapi.CallbackBody{Percent: &pct, Step: step, Detail: detail})
}

// Run installs the node: it fetches the instructions, checks the disks,
// writes the image, grows its partition, writes the seed, wipes the OSD
// disks marked for it, sets the UEFI boot entry, reports installed and
// reboots (or powers off when the instructions say not to reboot). On a
// failure it posts the error phase with the reason (when it has a
// token), prints it, and then does what racklift.onerror says; it
// returns the error once that action has returned (wait: when ctx ends).
func Run(ctx context.Context, cfg Config) error {
	if cfg.SysRoot == "" {
		cfg.SysRoot = "/sys"
	}
	if cfg.DevRoot == "" {
		cfg.DevRoot = "/dev"
	}
	if cfg.MountDir == "" {
		cfg.MountDir = "/run/racklift/root"
	}
	if cfg.HTTP == nil {
		cfg.HTTP = NewHTTPClient()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Console == nil {
		cfg.Console = io.Discard
	}
	if cfg.Run == nil {
		cfg.Run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, name, args...).CombinedOutput()
		}
	}
	if cfg.Sys == nil {
		cfg.Sys = LinuxSystem{}
	}
	a := &agent{cfg: cfg, t: cfg.Timeouts.withDefaults(), log: cfg.Log}
	a.client = &Client{HTTP: cfg.HTTP, Log: cfg.Log}
	a.say("start version=%s server=%s mac=%s", cfg.Version, cfg.Cmdline.Server, cfg.Cmdline.MAC)

	in, attempts, err := a.client.Instructions(ctx, cfg.Cmdline.Server, cfg.Cmdline.MAC, a.t.Instructions)
	if err != nil {
		// No token: nothing can be reported to racklift.
		return a.fail(ctx, nil, inStep(StepInstructions, err))
	}
	a.say("instructions fetched node=%s image=%s attempts=%d", in.Node, in.Image.Name, attempts)
	server := in.Server
	if server == "" {
		server = cfg.Cmdline.Server
	}
	a.rep = &Reporter{Client: a.client, Server: server, MAC: in.MAC, Token: in.Token}
	a.rep.Start(ctx)
	err = a.install(ctx, in)
	a.rep.Stop()
	if err != nil {
		return a.fail(ctx, in, err)
	}
	hundred := 100
	if err := a.rep.Post(ctx, nodeapi.PhaseInstalled, nodeapi.CallbackBody{Percent: &hundred, Step: StepReboot, Detail: "image " + in.Image.Name + " installed; rebooting into it"}); err != nil {
		// The image is on the disk, but racklift does not know: a reboot
		// would PXE-boot into a reinstall. Stop here instead.
		return a.fail(ctx, in, inStep(StepReboot, fmt.Errorf("racklift did not receive the installed callback (%w); the node stays in the agent so it is not reinstalled by accident", err)))
	}
	a.say("installed node=%s", in.Node)
	if in.Reboot {
		return a.cfg.Sys.Reboot()
	}
	return a.cfg.Sys.PowerOff()
}

// fail reports err and carries out the on-error action.
func (a *agent) fail(ctx context.Context, in *nodeapi.Instructions, err error) error {
	line := strings.ReplaceAll(err.Error(), "\n", "; ")
	a.say("error: %s", line)
	a.log.Error("install failed", "step", StepOf(err), "err", line)
	if in != nil && a.rep != nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		if perr := a.rep.Post(pctx, nodeapi.PhaseError, nodeapi.CallbackBody{Step: StepOf(err), Detail: line}); perr != nil {
			a.log.Error("could not report the error to racklift", "err", perr)
		}
		cancel()
	}
	switch a.cfg.Cmdline.OnError {
	case OnErrorReboot:
		_ = a.cfg.Sys.Reboot()
	case OnErrorPowerOff:
		_ = a.cfg.Sys.PowerOff()
	default:
		fmt.Fprintf(a.cfg.Console, "%sthe node stays in the deploy agent; fix the cause and power-cycle it to retry\n", MarkerPrefix)
		Hold(ctx)
	}
	return err
}

func (a *agent) install(ctx context.Context, in *nodeapi.Instructions) error {
	five := 5
	if err := a.rep.Post(ctx, nodeapi.PhasePre, nodeapi.CallbackBody{Percent: &five, Step: StepDisk, Detail: "deploy agent running; checking disks"}); err != nil {
		return inStep(StepDisk, err)
	}
	if err := a.checkNIC(in.MAC); err != nil {
		return inStep(StepDisk, err)
	}
	efi := a.hasEFI()
	if in.UEFI && !efi {
		return inStep(StepDisk, errors.New("the plan says this node boots UEFI, but the deploy agent was started in BIOS (legacy) mode: set the node's boot mode to UEFI in its firmware"))
	}
	if !in.UEFI && efi {
		a.log.Warn("the node booted the agent in UEFI mode but the plan says BIOS: no UEFI boot entry is set")
	}

	plan, err := a.waitDisks(ctx, in)
	if err != nil {
		return inStep(StepDisk, err)
	}
	for _, w := range plan.Warnings {
		a.progress(StepDisk, 7, w)
	}
	a.progress(StepDisk, 8, "OS disk "+plan.OS.String())

	mctx, cancel := context.WithTimeout(ctx, a.t.Manifest)
	m, err := a.client.Manifest(mctx, in.Image, a.t.Manifest)
	cancel()
	if err != nil {
		return inStep(StepManifest, err)
	}
	if err := checkFits(m, plan.OS, in.UEFI); err != nil {
		return inStep(StepManifest, err)
	}

	res, err := a.writeImage(ctx, in, m, plan.OS)
	if err != nil {
		return err
	}
	eighty8 := 88
	if err := a.rep.Post(ctx, nodeapi.PhasePost, nodeapi.CallbackBody{Percent: &eighty8, Step: StepImage, Bytes: res.Written, Total: m.MappedBytes, RateMBps: float64(int(res.RateMBps()*10)) / 10,
		Detail: fmt.Sprintf("image %s written and checked: %s in %.1f s (%.1f MB/s)", m.Name, HumanBytes(res.Written), res.Elapsed.Seconds(), res.RateMBps())}); err != nil {
		return inStep(StepImage, err)
	}
	if err := a.writeSeed(ctx, in, m, plan.OS); err != nil {
		return inStep(StepSeed, err)
	}
	if err := a.wipeOSDs(ctx, plan); err != nil {
		return inStep(StepOSDWipe, err)
	}
	if in.UEFI {
		if err := a.bootEntry(ctx, m, plan.OS); err != nil {
			return inStep(StepBootloader, err)
		}
	}
	return nil
}

func (a *agent) hasEFI() bool {
	_, err := os.Stat(filepath.Join(a.cfg.SysRoot, "firmware", "efi"))
	return err == nil
}

// checkNIC checks that a NIC with the node's MAC exists.
func (a *agent) checkNIC(mac string) error {
	ents, err := os.ReadDir(filepath.Join(a.cfg.SysRoot, "class", "net"))
	if err != nil {
		return fmt.Errorf("list NICs: %w", err)
	}
	var seenMACs []string
	for _, e := range ents {
		addr := attr(filepath.Join(a.cfg.SysRoot, "class", "net", e.Name(), "address"))
		if strings.EqualFold(addr, mac) {
			return nil
		}
		if e.Name() != "lo" {
			seenMACs = append(seenMACs, e.Name()+" "+addr)
		}
	}
	return fmt.Errorf("no NIC has MAC %s (NICs: %s)", mac, strings.Join(seenMACs, ", "))
}

// waitDisks scans until the planned disks are there (drivers may still
// be probing) or the bound passes; a conflict or ambiguity fails at once.
func (a *agent) waitDisks(ctx context.Context, in *nodeapi.Instructions) (DiskPlan, error) {
	deadline := time.Now().Add(a.t.Disks)
	for {
		disks, err := ScanDisks(a.cfg.SysRoot)
		if err != nil {
			return DiskPlan{}, err
		}
		plan, err := PlanDisks(disks, in.OSDisk, in.OSDs)
		if err == nil || !errors.Is(err, ErrNoDisk) || time.Now().After(deadline) {
			return plan, err
		}
		select {
		case <-ctx.Done():
			return DiskPlan{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// checkFits checks the image against the disk and the boot mode before
// anything is written.
func checkFits(m *image.Manifest, d Disk, uefi bool) error {
	if d.LogicalBlockSize != SectorSize {
		return fmt.Errorf("OS disk %s has %d-byte logical sectors; image %s is built for 512-byte sectors", d.Name, d.LogicalBlockSize, m.Name)
	}
	if d.Size < m.Size {
		return fmt.Errorf("OS disk %s is %s, smaller than image %s (%s)", d.Name, HumanBytes(d.Size), m.Name, HumanBytes(m.Size))
	}
	if uefi && (m.EFILoader == "" || m.EFIPartition == 0) {
		return fmt.Errorf("the node boots UEFI, but image %s has no EFI loader (re-import a UEFI-capable image, or boot the node in BIOS mode)", m.Name)
	}
	return nil
}

func (a *agent) writeImage(ctx context.Context, in *nodeapi.Instructions, m *image.Manifest, d Disk) (StreamResult, error) {
	bound := a.t.ImageMin + time.Duration(m.Size/a.t.ImageRate)*time.Second
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	dev, err := OpenDevice(filepath.Join(a.cfg.DevRoot, d.Name))
	if err != nil {
		return StreamResult{}, inStep(StepImage, fmt.Errorf("open the OS disk: %w", err))
	}
	defer dev.Close()
	size, err := dev.Size()
	if err != nil {
		return StreamResult{}, inStep(StepImage, err)
	}
	if size != d.Size {
		return StreamResult{}, inStep(StepImage, fmt.Errorf("%s is %d bytes, sysfs said %d", dev.Name(), size, d.Size))
	}
	ten := 10
	a.rep.ProgressAsync(nodeapi.CallbackBody{Percent: &ten, Step: StepImage, Total: m.MappedBytes, Detail: fmt.Sprintf("writing image %s (%s, %s of data) to %s", m.Name, HumanBytes(m.Size), HumanBytes(m.MappedBytes), d.Name)})
	prog := &Progress{Interval: a.cfg.ProgressInterval, Send: a.rep.ProgressAsync}
	res, err := Stream(ctx, m, in.Image.BlobURLs, a.client, dev, StreamOptions{DiskSize: size, Verify: a.cfg.Cmdline.Verify, Progress: prog.Update})
	if err != nil {
		return res, inStep(StepImage, err)
	}
	verified := "not read back"
	if a.cfg.Cmdline.Verify {
		verified = fmt.Sprintf("read back in %.1fs", res.VerifyElapsed.Seconds())
	}
	a.say("image written bytes=%d zeroed=%d seconds=%.1f rate=%.1fMB/s %s sha256=%s", res.Written, res.Zeroed, res.Elapsed.Seconds(), res.RateMBps(), strings.ReplaceAll(verified, " ", "-"), res.SHA256)

	a.progress(StepGrow, 89, "moving the backup GPT to the end of the disk")
	g, err := GrowTable(dev, size, m.GrowPartition)
	if err != nil {
		return res, inStep(StepGrow, err)
	}
	if err := dev.Sync(); err != nil {
		return res, inStep(StepGrow, err)
	}
	if err := dev.RereadPartitions(); err != nil {
		return res, inStep(StepGrow, err)
	}
	if g.Partition > 0 {
		a.progress(StepGrow, 90, fmt.Sprintf("partition %d grown from %s to %s", g.Partition, HumanBytes(int64(g.OldLastLBA+1)*SectorSize), HumanBytes(int64(g.NewLastLBA+1)*SectorSize)))
	}
	return res, nil
}

// partitionName is the kernel's name of partition n of disk: vda3,
// nvme0n1p3, mmcblk0p3 (a "p" when the disk name ends in a digit).
func partitionName(disk string, n int) string {
	if c := disk[len(disk)-1]; c >= '0' && c <= '9' {
		return disk + "p" + strconv.Itoa(n)
	}
	return disk + strconv.Itoa(n)
}

// waitPartition waits until /dev/PART exists (the kernel adds it after
// BLKRRPART; devtmpfs makes the node).
func (a *agent) waitPartition(ctx context.Context, d Disk, n int) (string, error) {
	p := filepath.Join(a.cfg.DevRoot, partitionName(d.Name, n))
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("%s did not appear after re-reading the partition table", p)
}

// rootPartition is the partition holding the root file system: the one
// the manifest grows, else the largest Linux file system.
func rootPartition(m *image.Manifest) (int, error) {
	if m.GrowPartition != 0 {
		return m.GrowPartition, nil
	}
	best, size := 0, int64(0)
	for _, p := range m.Partitions {
		if p.Number != m.EFIPartition && p.Size > size {
			best, size = p.Number, p.Size
		}
	}
	if best == 0 {
		return 0, fmt.Errorf("image %s has no root partition to write the seed to", m.Name)
	}
	return best, nil
}

func (a *agent) writeSeed(ctx context.Context, in *nodeapi.Instructions, m *image.Manifest, d Disk) error {
	ctx, cancel := context.WithTimeout(ctx, a.t.Step)
	defer cancel()
	n, err := rootPartition(m)
	if err != nil {
		return err
	}
	part, err := a.waitPartition(ctx, d, n)
	if err != nil {
		return err
	}
	dev, err := os.Open(part)
	if err != nil {
		return err
	}
	st, _ := dev.Stat()
	size := st.Size()
	if size == 0 {
		size = 1 << 20 // a block device's Stat size is 0; the probe reads the first 64 KiB
	}
	fstype := FSType(dev, max(size, 128<<10))
	dev.Close()
	if fstype == "" {
		return fmt.Errorf("partition %s of image %s holds no file system the agent knows (ext4, xfs, btrfs)", part, m.Name)
	}
	if err := os.MkdirAll(a.cfg.MountDir, 0o755); err != nil {
		return err
	}
	if err := a.cfg.Sys.Mount(part, a.cfg.MountDir, fstype); err != nil {
		return fmt.Errorf("mount %s (%s): %w", part, fstype, err)
	}
	files, werr := WriteSeed(a.cfg.MountDir, in.Seed)
	uerr := a.cfg.Sys.Unmount(a.cfg.MountDir)
	if werr != nil {
		return werr
	}
	if uerr != nil {
		return fmt.Errorf("unmount %s: %w", part, uerr)
	}
	a.progress(StepSeed, 92, fmt.Sprintf("NoCloud seed written to %s: %s (the root file system grows at first boot: cloud-init resizefs)", part, strings.Join(files, ", ")))
	return nil
}

func (a *agent) wipeOSDs(ctx context.Context, plan DiskPlan) error {
	for i, o := range plan.OSDs {
		if !o.Match.Wipe || o.Disk == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		dev, err := OpenDevice(filepath.Join(a.cfg.DevRoot, o.Disk.Name))
		if err != nil {
			return fmt.Errorf("OSD disk %d %s: %w", i+1, o.Disk.Name, err)
		}
		res, err := Wipe(dev, o.Disk.Size)
		if err == nil {
			err = dev.RereadPartitions()
		}
		dev.Close()
		if err != nil {
			return fmt.Errorf("OSD disk %d %s: %w", i+1, o.Disk.Name, err)
		}
		a.progress(StepOSDWipe, 94, fmt.Sprintf("OSD disk %s wiped (it carried: %s; %d partitions cleared)", o.Disk.Name, res.Kinds(), res.Partitions))
	}
	return nil
}

func (a *agent) bootEntry(ctx context.Context, m *image.Manifest, d Disk) error {
	ctx, cancel := context.WithTimeout(ctx, a.t.Step)
	defer cancel()
	if err := a.cfg.Sys.MountEFIVars(a.cfg.SysRoot); err != nil {
		return err
	}
	out, err := AddBootEntry(ctx, a.cfg.Run, filepath.Join(a.cfg.DevRoot, d.Name), m.EFIPartition, m.EFILoader, BootLabel(m.Name))
	fmt.Fprintf(a.cfg.Console, "%s\n%s", MarkerBootEntries, out)
	if err != nil {
		return err
	}
	a.progress(StepBootloader, 96, fmt.Sprintf("UEFI boot entry %q for %s on %s partition %d is first in BootOrder", BootLabel(m.Name), m.EFILoader, d.Name, m.EFIPartition))
	return nil
}

// Hold blocks until ctx ends. A pending timer keeps the Go runtime from
// taking a process with nothing else to do for deadlocked (the agent is
// PID 1 and must not exit: the kernel panics when init exits).
func Hold(ctx context.Context) {
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(time.Hour):
		}
	}
}

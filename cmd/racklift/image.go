package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/racklift/racklift/provision/image"
)

const imageUsage = `Usage:
  racklift image import NAME FILE [--state-dir DIR]
      Turn a whole-disk image (raw, raw.gz, raw.xz, raw.zst or qcow2: Debian 12
      from make image-debian12, Rocky 9 GenericCloud, Ubuntu cloud images) into
      what racklift streams to nodes: zstd blobs of its non-zero 4 KiB blocks and
      a manifest, in DIR/images. Checks the partition table (GPT CRCs) and that it
      can boot (BIOS boot code, the EFI loader in its ESP). Importing NAME again
      replaces it only once the new import succeeded.
  racklift image list [--state-dir DIR]
      One line per imported image.
  racklift image show NAME [--state-dir DIR] [--json]
      Size, blocks, partitions and boot loaders; --json prints the manifest as
      served to the deploy agent.
  racklift image rm NAME [--state-dir DIR]
      Remove NAME and every blob no other image uses.
`

func runImage(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, imageUsage)
		return exitUsage
	}
	switch args[0] {
	case "import":
		return imageImport(ctx, args[1:], e)
	case "list", "ls":
		return imageList(args[1:], e)
	case "show":
		return imageShow(args[1:], e)
	case "rm", "remove":
		return imageRemove(args[1:], e)
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, imageUsage)
		return exitOK
	default:
		fmt.Fprintf(e.stderr, "racklift image: unknown subcommand %q\n\n%s", args[0], imageUsage)
		return exitUsage
	}
}

// imageArgs registers --state-dir on fs, parses args (npos positional
// arguments, described by want) and opens the store.
func imageArgs(fs *flag.FlagSet, args []string, npos int, want string, e *env) (*image.Store, []string, int, bool) {
	stateDir := fs.String("state-dir", defaultStateDir(e.lookupEnv), "racklift's state directory (images are kept in DIR/images)")
	pos, code, ok := parseFlags(fs, args, e)
	if !ok {
		return nil, nil, code, false
	}
	if len(pos) != npos {
		fmt.Fprintf(e.stderr, "racklift %s: want %s\n\n%s", fs.Name(), want, imageUsage)
		return nil, nil, exitUsage, false
	}
	s, err := image.Open(*stateDir)
	if err != nil {
		fmt.Fprintf(e.stderr, "racklift: %v\n", err)
		return nil, nil, exitRuntime, false
	}
	return s, pos, 0, true
}

// imageExit maps an image error to an exit code: a missing or unreadable
// file is a runtime problem, anything about the image itself a failure.
func imageExit(err error) int {
	var pe *fs.PathError
	if errors.As(err, &pe) && !errors.Is(err, image.ErrNotFound) {
		return exitRuntime
	}
	return exitFailed
}

func imageImport(ctx context.Context, args []string, e *env) int {
	s, pos, code, ok := imageArgs(newFlags("image import", e), args, 2, "NAME FILE", e)
	if !ok {
		return code
	}
	name, file := pos[0], pos[1]
	var prog func(image.Progress)
	tty := isTerminal(e.stderr)
	if tty {
		prog = func(p image.Progress) {
			fmt.Fprintf(e.stderr, "\r\033[Kimporting %s: %3.0f%%  %s read, %s mapped, %.0f MB/s",
				name, 100*p.Fraction(), image.FormatBytes(p.Done), image.FormatBytes(p.Mapped), p.RateMBps())
		}
	}
	start := time.Now()
	m, err := s.Import(ctx, name, file, prog)
	if tty {
		fmt.Fprint(e.stderr, "\r\033[K")
	}
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(e.stderr, "racklift: import %s interrupted; nothing was changed\n", name)
			return exitFailed
		}
		fmt.Fprintf(e.stderr, "racklift: %v\n", err)
		return imageExit(err)
	}
	took := time.Since(start)
	_, raw, err := s.Manifest(name)
	if err != nil {
		fmt.Fprintf(e.stderr, "racklift: %v\n", err)
		return exitRuntime
	}
	fmt.Fprintf(e.stdout, "imported %s from %s (%s, %s) in %.1f s, %.0f MB/s\n",
		m.Name, m.Source.File, m.Source.Format, image.FormatBytes(m.Source.Size), took.Seconds(), float64(m.Size)/1e6/took.Seconds())
	writeImageSummary(e.stdout, s, m, raw)
	return exitOK
}

func writeImageSummary(w io.Writer, s *image.Store, m *image.Manifest, raw []byte) {
	blobs, blobBytes := m.BlobStats()
	sum := sha256.Sum256(raw)
	fmt.Fprintf(w, "  size      %s (%d bytes), sha256 %s\n", image.FormatBytes(m.Size), m.Size, m.SHA256)
	fmt.Fprintf(w, "  mapped    %s in %s (%.0f%% of the disk), stored as %s: %s (zstd)\n",
		image.FormatBytes(m.MappedBytes), plural(len(m.Chunks), "chunk"), 100*float64(m.MappedBytes)/float64(m.Size),
		plural(blobs, "blob"), image.FormatBytes(blobBytes))
	grow := "none"
	if m.GrowPartition != 0 {
		grow = fmt.Sprint(m.GrowPartition)
	}
	fmt.Fprintf(w, "  table     %s, %s; the agent grows partition %s\n", strings.ToUpper(m.Table), plural(len(m.Partitions), "partition"), grow)
	bios, uefi := "no", "no"
	if m.BIOS {
		bios = "yes"
	}
	if m.EFILoader != "" {
		uefi = fmt.Sprintf("%s (partition %d)", m.EFILoader, m.EFIPartition)
	}
	fmt.Fprintf(w, "  boot      BIOS: %s; UEFI: %s\n", bios, uefi)
	if len(m.EFIFiles) > 0 {
		fmt.Fprintf(w, "  ESP       %s\n", strings.Join(m.EFIFiles, " "))
	}
	fmt.Fprintf(w, "  manifest  %s/%s/manifest.json (sha256 %s)\n", s.Dir(), m.Name, hex.EncodeToString(sum[:]))
}

func imageList(args []string, e *env) int {
	s, _, code, ok := imageArgs(newFlags("image list", e), args, 0, "no arguments", e)
	if !ok {
		return code
	}
	ms, err := s.List()
	if err != nil {
		fmt.Fprintf(e.stderr, "racklift: %v\n", err)
		code = exitFailed
	}
	if len(ms) == 0 {
		if err == nil {
			fmt.Fprintf(e.stdout, "no images in %s (racklift image import NAME FILE)\n", s.Dir())
		}
		return code
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tMAPPED\tBLOBS\tBOOT\tSOURCE\tIMPORTED")
	for _, m := range ms {
		_, bb := m.BlobStats()
		var boot []string
		if m.BIOS {
			boot = append(boot, "bios")
		}
		if m.EFILoader != "" {
			boot = append(boot, "uefi")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s (%s)\t%s\n", m.Name, image.FormatBytes(m.Size), image.FormatBytes(m.MappedBytes),
			image.FormatBytes(bb), strings.Join(boot, "+"), m.Source.File, m.Source.Format, m.Imported.Format(time.RFC3339))
	}
	tw.Flush()
	return code
}

func imageShow(args []string, e *env) int {
	fs := newFlags("image show", e)
	asJSON := fs.Bool("json", false, "print the manifest (the exact bytes served to the deploy agent)")
	s, pos, code, ok := imageArgs(fs, args, 1, "NAME", e)
	if !ok {
		return code
	}
	m, raw, err := s.Manifest(pos[0])
	if err != nil {
		fmt.Fprintf(e.stderr, "racklift: %v\n", err)
		return imageExit(err)
	}
	if *asJSON {
		_, _ = e.stdout.Write(raw)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "image %s, imported %s from %s (%s, %s, sha256 %s)\n", m.Name, m.Imported.Format(time.RFC3339),
		m.Source.File, m.Source.Format, image.FormatBytes(m.Source.Size), m.Source.SHA256)
	writeImageSummary(e.stdout, s, m, raw)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tSTART\tSIZE\tTYPE\tNAME")
	for _, p := range m.Partitions {
		fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\t%s\n", p.Number, p.Start, image.FormatBytes(p.Size), partitionType(p.Type), p.Name)
	}
	tw.Flush()
	return exitOK
}

// partitionType names the partition types people meet in OS images.
func partitionType(t string) string {
	switch t {
	case image.GPTTypeESP, image.MBRTypeESP:
		return "EFI system (" + t + ")"
	case image.GPTTypeBIOSBoot:
		return "BIOS boot (" + t + ")"
	case image.GPTTypeLinuxData, image.MBRTypeLinux:
		return "Linux file system (" + t + ")"
	case image.GPTTypeRootAMD64:
		return "Linux root x86-64 (" + t + ")"
	case "e6d6d379-f507-44c2-a23c-238f2a3df928", "0x8e":
		return "Linux LVM (" + t + ")"
	case "bc13c2ff-59e6-4262-a352-b275fd6f7172":
		return "Linux extended boot (" + t + ")"
	}
	return t
}

func imageRemove(args []string, e *env) int {
	s, pos, code, ok := imageArgs(newFlags("image rm", e), args, 1, "NAME", e)
	if !ok {
		return code
	}
	st, err := s.Remove(pos[0])
	if err != nil {
		fmt.Fprintf(e.stderr, "racklift: %v\n", err)
		return imageExit(err)
	}
	fmt.Fprintf(e.stdout, "removed image %s; freed %s (%s)\n", pos[0], plural(st.Blobs, "blob"), image.FormatBytes(st.Bytes))
	return exitOK
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

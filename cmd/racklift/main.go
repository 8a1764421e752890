// Command racklift turns one YAML cluster plan into installed, reachable
// bare-metal servers: it validates the plan, renders each node's install
// config, serves DHCP/TFTP/HTTP boot, drives the BMCs, and shows progress.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // the command ran and found a problem (invalid plan, failed node)
	exitUsage   = 2 // bad command line
	exitRuntime = 3 // could not run (I/O, bind, permissions)
)

// env is what a command may read from its environment; tests pass their own.
type env struct {
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
	log            *slog.Logger
}

func main() {
	ctx, stop := signalContext(context.Background())
	e := &env{stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv}
	code := run(ctx, os.Args[1:], e)
	stop()
	os.Exit(code)
}

// signalContext is cancelled on SIGINT or SIGTERM, with the signal as its
// cause (context.Cause), so a long-running command can say why it stopped.
// Signals after the first are ignored until stop is called; stop restores
// the default handling.
func signalContext(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			cancel(fmt.Errorf("%w: %s", errSignal, signalName(s)))
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

// errSignal is the cause of a context cancelled by a signal.
var errSignal = errors.New("received signal")

// signalName is SIGTERM, SIGINT, ... for the usual signals.
func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

const usage = `racklift - install a highly available OpenStack + Ceph cluster from one plan

Usage:
  racklift plan validate FILE [--secrets FILE] [--json] [--strict]
  racklift plan show FILE [--secrets FILE]
  racklift plan schema
  racklift plan example [lab|hyperconverged|large-site]
  racklift serve --plan FILE --interface IFACE [--dhcp-mode proxy|authoritative|off]
                 [--state-dir DIR] [--media NAME=PATH ...] [--admin-listen ADDR]
  racklift install [--all | --role ROLE | NODE...] [--parallel N] [--stagger D] [--watch]
  racklift reinstall NODE --yes
  racklift status [--watch] [--json] [NODE...]
  racklift bmc status|inventory NODE...|--role R|--all --plan FILE [--secrets FILE]
  racklift bmc power on|off|soft|cycle|reset NODE...|--role R|--all --plan FILE [--yes]
  racklift bmc bootdev pxe|disk|bios|cdrom NODE... [--persistent] [--efi|--legacy]
  racklift bmc bios show|apply NODE... [--dry-run]
      (every bmc command: --plan --secrets --parallel N --stagger D --timeout D --json)
  racklift handoff --plan FILE -o DIR [--state-dir DIR] [--allow-unverified]
  racklift image import NAME FILE | list | show NAME [--json] | rm NAME  [--state-dir DIR]
  racklift demo
  racklift version

Every flag can also be set as RACKLIFT_<FLAG> in the environment
(e.g. RACKLIFT_SECRETS=/etc/racklift/secrets.yaml), except --yes, --all,
--role, --force, --persistent and --allow-unverified, which must be typed.
Run 'racklift COMMAND -h' for a command's flags.
`

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, e *env) int {
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: logLevel(e.lookupEnv)}))
	}
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "plan":
		return runPlan(ctx, args[1:], e)
	case "serve":
		return runServe(ctx, args[1:], e)
	case "install":
		return runInstall(ctx, args[1:], e)
	case "reinstall":
		return runReinstall(ctx, args[1:], e)
	case "status":
		return runStatus(ctx, args[1:], e)
	case "demo":
		return runDemo(ctx, args[1:], e)
	case "bmc":
		return runBMC(ctx, args[1:], e)
	case "agent": // hidden: the deploy agent on a node (provision/agent)
		return runAgent(ctx, args[1:], e)
	case "handoff":
		return runHandoff(ctx, args[1:], e)
	case "image":
		return runImage(ctx, args[1:], e)
	case "version", "--version", "-version":
		fmt.Fprintf(e.stdout, "racklift %s\n", version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(e.stderr, "racklift: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

func logLevel(lookup func(string) (string, bool)) slog.Level {
	var l slog.Level
	if v, ok := lookup("RACKLIFT_LOG_LEVEL"); ok {
		if err := l.UnmarshalText([]byte(v)); err == nil {
			return l
		}
	}
	return slog.LevelInfo
}

// newFlags returns a FlagSet that reports errors to e.stderr and never exits.
func newFlags(name string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// commandLineOnly reports whether a flag must be typed on the command line:
// flags that confirm a destructive action, widen what it acts on, or
// override a safety check are never taken from the environment, so a
// RACKLIFT_YES=1 left in a shell profile or a CI variable cannot turn a
// reinstall or a power-off into one without the question. Node lists are
// positional arguments, which never come from the environment either.
func commandLineOnly(flag string) bool {
	switch flag {
	case "yes", "all", "role", "force", "persistent", "allow-unverified":
		return true
	}
	return false
}

// parseFlags parses args allowing flags after positional arguments
// ("plan validate FILE --json"), then applies RACKLIFT_<FLAG> environment
// overrides to flags not given on the command line, except the
// commandLineOnly ones: a matching variable is ignored, and racklift says
// so. It returns the positional arguments, or an exit code when parsing
// failed or help was shown.
func parseFlags(fs *flag.FlagSet, args []string, e *env) ([]string, int, bool) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var bad bool
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		name := "RACKLIFT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := e.lookupEnv(name); ok {
			if commandLineOnly(f.Name) {
				fmt.Fprintf(e.stderr, "racklift: ignoring %s from the environment: --%s must be typed on the command line\n", name, f.Name)
				return
			}
			if err := f.Value.Set(v); err != nil {
				fmt.Fprintf(e.stderr, "racklift: %s=%q: %v\n", name, v, err)
				bad = true
			}
		}
	})
	if bad {
		return nil, exitUsage, false
	}
	return pos, 0, true
}

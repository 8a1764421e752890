package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/racklift/racklift/provision/agent"
)

// runAgent is the hidden `racklift agent` command: the deploy agent, run
// by the agent initramfs's /init on a node being installed (see
// provision/agent). It reads its racklift.* arguments from the kernel
// command line; it is not in the usage text because nobody runs it by hand.
func runAgent(ctx context.Context, args []string, e *env) int {
	fs := newFlags("agent", e)
	cmdlineFile := fs.String("cmdline", "/proc/cmdline", "file holding the kernel command line (racklift.server=, racklift.mac=)")
	pos, code, ok := parseFlags(fs, args, e)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "racklift agent: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	pid1 := os.Getpid() == 1
	// As PID 1 the agent must never exit: the kernel panics when init does.
	done := func(code int) int {
		if pid1 {
			agent.Hold(ctx)
		}
		return code
	}
	b, err := os.ReadFile(*cmdlineFile)
	if err != nil {
		fmt.Fprintf(e.stderr, "%sracklift agent: %v\n", agent.MarkerError, err)
		return done(exitRuntime)
	}
	cl, err := agent.ParseCmdline(string(b))
	if err != nil {
		fmt.Fprintf(e.stdout, "%s%s\n", agent.MarkerError, strings.ReplaceAll(err.Error(), "\n", "; "))
		return done(exitUsage)
	}
	log := slog.New(slog.NewTextHandler(e.stdout, &slog.HandlerOptions{Level: logLevel(e.lookupEnv)})).With("svc", "agent")
	err = agent.Run(ctx, agent.Config{
		Cmdline: cl,
		Version: version,
		Log:     log,
		Console: e.stdout,
		Uptime:  agent.Uptime,
	})
	if err != nil {
		return done(exitFailed)
	}
	return done(exitOK)
}

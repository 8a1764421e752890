package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/racklift/racklift/provision/bmc"
)

// bmcDeps is what the bmc commands take from outside, so tests can replace
// the BMCs and the terminal.
type bmcDeps struct {
	// factory makes the function that creates one Controller per node.
	factory func(bmc.Options) func(bmc.Target) bmc.Controller
	// stdin is read for the interactive confirmation.
	stdin io.Reader
	// isTerminal reports whether a reader or writer is a terminal.
	isTerminal func(any) bool
}

// defaultBMCDeps talks to real BMCs through bmclib and uses the process's stdin.
func defaultBMCDeps() bmcDeps {
	return bmcDeps{factory: bmc.BMCLibFactory, stdin: os.Stdin, isTerminal: bmcFileIsTerminal}
}

// bmcFileIsTerminal reports whether v is an *os.File open on a terminal.
func bmcFileIsTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok || f == nil {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// confirm asks for the cluster name before taking several machines down.
func (c *bmcCmd) confirm(targets []bmc.Target) (int, bool) {
	e := c.e
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.Node
	}
	list := strings.Join(names, ", ")
	if len(names) > 10 {
		list = strings.Join(names[:10], ", ") + fmt.Sprintf(", ... (%d more)", len(names)-10)
	}
	if !c.deps.isTerminal(c.deps.stdin) {
		fmt.Fprintf(e.stderr, "racklift bmc: refusing to power %s %d nodes without confirmation (%s).\n"+
			"Add --yes to confirm, or run in a terminal to be asked.\n", c.action, len(names), list)
		return exitUsage, false
	}
	fmt.Fprintf(e.stderr, "This will power %s %d nodes of cluster %q: %s\nType the cluster name to continue: ",
		c.action, len(names), c.p.Cluster.Name, list)
	line, err := bufio.NewReader(c.deps.stdin).ReadString('\n')
	if strings.TrimSpace(line) != c.p.Cluster.Name || (err != nil && line == "") {
		fmt.Fprintf(e.stderr, "\nracklift bmc: confirmation did not match %q; nothing was done\n", c.p.Cluster.Name)
		return exitUsage, false
	}
	return 0, true
}

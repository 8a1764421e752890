// Command mkagent builds racklift's deploy agent directory; run it
// through hack/agent/build.sh (`make agent`).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	agentbuild "github.com/racklift/racklift/hack/agent"
)

func main() {
	out := flag.String("out", "out/agent", "agent directory to write")
	cache := flag.String("cache", "hack/.cache/agent", "where downloaded Debian packages are kept")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err := agentbuild.Build(ctx, agentbuild.Options{Out: *out, Cache: *cache, Logf: func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, f+"\n", a...)
	}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkagent: %v\n", err)
		os.Exit(1)
	}
}

package main

import (
	"context"
	"fmt"
)

// runDemo validates and shows the embedded demo plan (the 3-node lab that
// matches the QEMU test bed). Later versions serve it on a test network.
func runDemo(ctx context.Context, args []string, e *env) int {
	if len(args) != 0 {
		fmt.Fprintln(e.stderr, "racklift demo: takes no arguments")
		return exitUsage
	}
	fmt.Fprintln(e.stdout, "racklift demo: the embedded lab plan (racklift plan example lab)")
	fmt.Fprintln(e.stdout)
	return planShow(ctx, []string{"example:lab"}, e)
}

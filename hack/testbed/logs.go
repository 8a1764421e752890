//go:build linux

package testbed

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// Tail returns the last n lines of the file at path (or why it cannot),
// for failure messages that show what a process said before it stopped.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitUDPListen waits until something in the namespace listens on UDP
// port (read from the namespace's /proc/net/udp), polling until ctx ends
// or gone is closed (the process that should bind it exited).
func (n *Netns) WaitUDPListen(ctx context.Context, port int, gone <-chan struct{}) error {
	want := fmt.Sprintf(":%04X ", port)
	for {
		var found bool
		err := n.Do(func() error {
			f, err := os.Open("/proc/thread-self/net/udp")
			if err != nil {
				return err
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				fields := strings.Fields(sc.Text())
				if len(fields) > 1 && strings.Contains(fields[1]+" ", want) {
					found = true
				}
			}
			return sc.Err()
		})
		if err != nil {
			return err
		}
		if found {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing listens on UDP port %d in %s: %w", port, n.Name, ctx.Err())
		case <-gone:
			return fmt.Errorf("the process exited before it listened on UDP port %d", port)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

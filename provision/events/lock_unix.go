//go:build unix

package events

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockName is the lock file in the state directory.
const lockName = "racklift.lock"

// lockDir takes an exclusive flock on dir/racklift.lock, so that a second
// racklift on the same state directory (which would drive the same run's
// BMCs twice) fails at once, and writes this process's PID into it for
// the error message. The kernel drops the lock when the process dies, so
// a crash never leaves it behind. Close the returned file to unlock.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("events: lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder := "another process"
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				holder = fmt.Sprintf("racklift process %d", pid)
			}
			return nil, fmt.Errorf("%w (by %s): stop it, or give this racklift another --state-dir", ErrInUse, holder)
		}
		return nil, fmt.Errorf("events: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

package testbed

import (
	"fmt"
	"os"
	"testing"
)

// SkipOrFail is for a real-peer test whose peer (a Debian package: QEMU,
// ipmi_sim, curl, chromium, ...) is missing. On a developer's machine it
// skips with the reason; under CI=true, where make deps has installed every
// peer, it fails, so a real-peer test can never silently stop running in CI.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: make deps should have installed it)", why)
	}
	t.Skip(why)
}

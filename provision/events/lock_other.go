//go:build !unix

package events

import "os"

// lockDir does nothing where flock is missing: one racklift per state
// directory is then up to the operator.
func lockDir(string) (*os.File, error) { return nil, nil }

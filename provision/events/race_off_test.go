//go:build !race

package events

// raceEnabled reports a -race build: the race detector slows the
// transpiled SQLite many times, so the heaviest tests do fewer rounds.
const raceEnabled = false

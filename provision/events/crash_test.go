package events

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Environment of the crash helper process.
const (
	crashDirEnv   = "RACKLIFT_EVENTS_CRASH_DIR"
	crashRoundEnv = "RACKLIFT_EVENTS_CRASH_ROUND"
)

// Crash helper bounds: the parent kills the child long before these.
const (
	crashWorkers      = 8
	crashPerWorkerMax = 200000
	crashChildLife    = 15 * time.Second
)

// crashEvent is the event worker w records as its seq-th in round; the
// parent rebuilds it to check what was stored. Events move nodes through
// phases so the node rows are exercised too.
func crashEvent(round, w, seq int) Event {
	phases := []Phase{PhaseDHCP, PhaseNone, PhaseInstalling, PhaseNone, PhaseFailed}
	return Event{
		At:      t0.Add(time.Duration(round)*time.Hour + time.Duration(seq)*time.Millisecond),
		Node:    fmt.Sprintf("crash-%d", w),
		MAC:     fmt.Sprintf("52:54:00:00:%02x:%02x", round, w),
		Source:  SourceInstaller,
		Type:    "crash.test",
		Phase:   phases[seq%len(phases)],
		Percent: seq % 101,
		Detail:  fmt.Sprintf("round=%d worker=%d seq=%d", round, w, seq),
		Attrs:   map[string]string{"round": strconv.Itoa(round), "w": strconv.Itoa(w), "seq": strconv.Itoa(seq)},
	}
}

// TestHelperWriter is not a test: it is the child process of
// TestCrashDurability. It records events as fast as it can from several
// goroutines and prints "ack <id> <worker> <seq>" for each acknowledged
// one, until it is killed (or its bounds run out).
func TestHelperWriter(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashDurability")
	}
	round, err := strconv.Atoi(os.Getenv(crashRoundEnv))
	if err != nil {
		t.Fatalf("bad %s: %v", crashRoundEnv, err)
	}
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	var (
		mu  sync.Mutex
		out = bufio.NewWriter(os.Stdout)
		wg  sync.WaitGroup
	)
	deadline := time.Now().Add(crashChildLife)
	for w := range crashWorkers {
		wg.Go(func() {
			for seq := 0; seq < crashPerWorkerMax && time.Now().Before(deadline); seq++ {
				got, err := s.Record(t.Context(), crashEvent(round, w, seq))
				if err != nil {
					t.Errorf("Record: %v", err)
					return
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %d %d %d\n", got.ID, w, seq)
				err = out.Flush()
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
}

// ack is one acknowledgement read from the child.
type ack struct {
	round, worker, seq int
}

// TestCrashDurability SIGKILLs a real writer process at random points and
// checks that every event it acknowledged survived, with the right
// content, and that IDs stay unique and contiguous across crashes.
func TestCrashDurability(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("inside the helper process")
	}
	t.Parallel() // mostly waits on child processes
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	dir := t.TempDir()
	acked := map[int64]ack{}
	rounds := 5
	if raceEnabled {
		rounds = 3 // each child spends about a second starting under -race
	}
	for round := range rounds {
		killAfter := 1 + rng.IntN(2000)
		acks := runCrashChild(t, dir, round, killAfter)
		for id, a := range acks {
			if prev, dup := acked[id]; dup {
				t.Fatalf("ID %d acknowledged twice: %+v and %+v", id, prev, a)
			}
			acked[id] = a
		}
		stored := verifyCrashStore(t, dir, acked)
		t.Logf("round %d: killed after %d acks (asked %d); %d acked, %d stored in total",
			round, len(acks), killAfter, len(acked), stored)
	}
}

// runCrashChild runs one helper, kills it with SIGKILL once it has
// acknowledged killAfter events (or after a time bound), and returns every
// acknowledgement it printed.
func runCrashChild(t *testing.T, dir string, round, killAfter int) map[int64]ack {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashRoundEnv+"="+strconv.Itoa(round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kill := func() { _ = cmd.Process.Signal(syscall.SIGKILL) }
	timer := time.AfterFunc(5*time.Second, kill) // bound: the child may be slow to start
	defer timer.Stop()

	acks := map[int64]ack{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() { // ends at EOF, when the killed child's pipe closes
		id, a, ok := parseAck(sc.Text(), round)
		if !ok {
			continue // go test output such as PASS
		}
		acks[id] = a
		if len(acks) == killAfter {
			kill()
		}
	}
	err = cmd.Wait()
	if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !st.Signaled() || st.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL (wait: %v)\nstderr:\n%s", err, stderr.String())
	}
	return acks
}

// parseAck parses "ack <id> <worker> <seq>".
func parseAck(line string, round int) (int64, ack, bool) {
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != "ack" {
		return 0, ack{}, false
	}
	id, err1 := strconv.ParseInt(f[1], 10, 64)
	w, err2 := strconv.Atoi(f[2])
	seq, err3 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, ack{}, false
	}
	return id, ack{round: round, worker: w, seq: seq}, true
}

// verifyCrashStore reopens the store, checks it against the acks and
// returns how many events it holds.
func verifyCrashStore(t *testing.T, dir string, acked map[int64]ack) int {
	t.Helper()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer s.Close()
	stored := allEvents(t, s)
	byID := make(map[int64]Event, len(stored))
	for i, ev := range stored {
		if ev.ID != int64(i+1) {
			t.Fatalf("stored event %d has ID %d: IDs not contiguous", i, ev.ID)
		}
		byID[ev.ID] = ev
	}
	for id, a := range acked {
		got, ok := byID[id]
		if !ok {
			t.Fatalf("acknowledged event %d (%+v) lost; %d stored", id, a, len(stored))
		}
		want := crashEvent(a.round, a.worker, a.seq)
		want.ID = id
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("event %d:\n got %+v\nwant %+v", id, got, want)
		}
	}
	assertNodesConsistent(t, s)
	return len(stored)
}

package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// IPMIChassisScript is OpenIPMI ipmi_sim's chassis_control program (see
// ipmi_lan(5)): called as "get parm..." (prints "parm:value" lines) or
// "set parm value...". It logs every call to calls.log and keeps the power
// state and boot device in the files power and boot next to itself. Each
// power-on request ("set power 1" or a reset) also increments gen, so a
// test can start or restart a VM for every power-on it sees.
const IPMIChassisScript = `#!/bin/sh
D=$(dirname "$0")
echo "$*" >> "$D/calls.log"
op=$1; shift
case $op in
get)
	for p in "$@"; do
		case $p in
		power) echo "power:$(cat "$D/power" 2>/dev/null || echo 0)";;
		boot) echo "boot:$(cat "$D/boot" 2>/dev/null || echo default)";;
		*) echo "$p:0";;
		esac
	done;;
set)
	while [ $# -ge 2 ]; do
		case $1 in
		power)
			echo "$2" > "$D/power"
			if [ "$2" = 1 ]; then
				g=$(cat "$D/gen" 2>/dev/null || echo 0)
				echo $((g + 1)) > "$D/gen"
			fi;;
		reset)
			g=$(cat "$D/gen" 2>/dev/null || echo 0)
			echo $((g + 1)) > "$D/gen"
			echo 1 > "$D/power";;
		boot) echo "$2" > "$D/boot";;
		esac
		shift 2
	done;;
esac
exit 0
`

// ipmiEmu is ipmi_sim's emulator command file: one BMC at 0x20.
const ipmiEmu = `mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
`

// IPMISimConfig writes the configuration of one simulated BMC into dir:
// chassis.sh (IPMIChassisScript), lan.conf (LAN on addr:port, user "admin"
// with password, admin privilege, cipher suites ipmitool -C 3 uses) and
// bmc.emu, plus a state directory. It returns ipmi_sim's arguments; the
// caller starts the process where it needs it (host or namespace).
func IPMISimConfig(dir, name, addr string, port int, password string) ([]string, error) {
	chassis := filepath.Join(dir, "chassis.sh")
	lan := fmt.Sprintf(`name "%s"
set_working_mc 0x20
  startlan 1
    addr %s %d
    priv_limit admin
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "%s"
  user 2 true "admin" "%s" admin 10 none md2 md5 straight
`, name, addr, port, chassis, password)
	for f, body := range map[string]string{"chassis.sh": IPMIChassisScript, "lan.conf": lan, "bmc.emu": ipmiEmu} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o755); err != nil {
			return nil, fmt.Errorf("ipmi_sim config: %w", err)
		}
	}
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o755); err != nil {
		return nil, fmt.Errorf("ipmi_sim config: %w", err)
	}
	return []string{"-c", filepath.Join(dir, "lan.conf"), "-f", filepath.Join(dir, "bmc.emu"), "-s", state, "-n"}, nil
}

// StartIPMISim starts one simulated BMC (ipmi_sim, user "admin" with
// password) on addr:port of this host (127.0.0.x), waits until ipmitool
// gets an answer from it, and stops it by PID when the test ends. It
// returns the BMC's directory (calls.log, power, boot, gen, sim.log).
func StartIPMISim(t testing.TB, name, addr string, port int, password string) string {
	t.Helper()
	dir := t.TempDir()
	args, err := IPMISimConfig(dir, name, addr, port, password)
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "sim.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ipmi_sim", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("ipmi_sim: %v", err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by PID: only the ipmi_sim this test started
		_ = cmd.Wait()
		_ = logf.Close()
		t.Logf("stopped ipmi_sim %s pid %d", name, pid)
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		out, err := exec.CommandContext(ctx, "ipmitool", "-I", "lanplus", "-C", "3", "-H", addr, "-p", strconv.Itoa(port),
			"-U", "admin", "-P", password, "-N", "1", "-R", "1", "chassis", "power", "status").CombinedOutput()
		cancel()
		if err == nil && strings.Contains(string(out), "Chassis Power") {
			return dir
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "sim.log"))
			t.Fatalf("ipmi_sim %s on %s:%d did not come up: %s", name, addr, port, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

package templates_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/racklift/racklift/hack/testbed"
	"github.com/racklift/racklift/templates"
)

// fixtureDriver loads the facts script as a module, points its file
// paths at the test's fixtures and prints what its functions return.
const fixtureDriver = `
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("facts", sys.argv[1])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
d = sys.argv[2]
out = {}
for case in ("plain", "stub", "stub-unreadable", "missing"):
    m.notes.clear()
    m.RESOLV_CONF = os.path.join(d, case, "resolv.conf")
    m.RESOLVED_CONF = os.path.join(d, case, "resolved.conf")
    out["dns-" + case] = [m.dns(), len(m.notes)]
for case in ("on", "off", "short", "missing"):
    m.SECURE_BOOT_VAR = os.path.join(d, "sb-" + case)
    out["sb-" + case] = m.secure_boot(True)
out["sb-bios"] = m.secure_boot(False)
m.PROC_BONDING = os.path.join(d, "bonding")
out["perm"] = m.proc_perm_macs()
m.SYS_NET = os.path.join(d, "no-sysfs")
out["bond"] = list(m.bond_info("bond0"))
m.SYS_NET = os.path.join(d, "sysnet")
out["ifnames"] = [i["name"] for i in m.interfaces()]
m.OS_RELEASE = (os.path.join(d, "none"), os.path.join(d, "os-release"))
out["os"] = m.os_release()
print(json.dumps(out))
`

// procBonding is /proc/net/bonding/bond0 of an active-backup bond.
const procBonding = `Ethernet Channel Bonding Driver: v6.1.0-28-amd64

Bonding Mode: fault-tolerance (active-backup)
Primary Slave: None
Currently Active Slave: ens4
MII Status: up

Slave Interface: ens4
MII Status: up
Permanent HW addr: 52:54:00:99:11:02
Slave queue ID: 0

Slave Interface: ens5
MII Status: up
Permanent HW addr: 52:54:00:99:12:02
Slave queue ID: 0
`

// TestFactsScriptFixtures checks the parts of the facts script that read
// files a test machine cannot arrange for real: systemd-resolved's stub,
// the SecureBoot EFI variable, /proc/net/bonding (the fallback when sysfs
// has no bonding directory) and os-release quoting; and that what it
// cannot read stays empty.
func TestFactsScriptFixtures(t *testing.T) {
	if _, err := os.Stat(systemPython); err != nil {
		testbed.SkipOrFail(t, "%s is missing", systemPython)
	}
	d := t.TempDir()
	files := map[string]string{
		"plain/resolv.conf":           "# comment\nsearch example.net\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n",
		"stub/resolv.conf":            "nameserver 127.0.0.53\noptions edns0 trust-ad\n",
		"stub/resolved.conf":          "nameserver 10.1.1.1\nnameserver 10.1.1.2\n",
		"stub-unreadable/resolv.conf": "nameserver 127.0.0.53\n",
		"sb-on":                       "\x06\x00\x00\x00\x01",
		"sb-off":                      "\x06\x00\x00\x00\x00",
		"sb-short":                    "\x06\x00",
		"bonding/bond0":               procBonding,
		// /sys/class/net with the bonding module loaded: a file beside
		// the interfaces' directories.
		"sysnet/bonding_masters": "bond0\n",
		"sysnet/eth9/address":    "52:54:00:00:00:09\n",
		"sysnet/eth9/operstate":  "up\n",
		"sysnet/eth9/mtu":        "1500\n",
		"sysnet/lo/address":      "00:00:00:00:00:00\n",
		"os-release":             "NAME=\"Rocky Linux\"\nVERSION_ID='9.4'\nID=rocky\nPRETTY_NAME=\"Rocky Linux 9.4 (Blue Onyx)\"\n",
	}
	for name, content := range files {
		p := filepath.Join(d, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(d, templates.FactsScriptName)
	if err := os.WriteFile(script, templates.FactsScript(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(systemPython, "-c", fixtureDriver, script, d).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := map[string]string{
		"dns-plain":           `[["10.0.0.2","10.0.0.3"],0]`,
		"dns-stub":            `[["10.1.1.1","10.1.1.2"],0]`,
		"dns-stub-unreadable": `[["127.0.0.53"],1]`,
		"dns-missing":         `[[],1]`,
		"sb-on":               `true`,
		"sb-off":              `false`,
		"sb-short":            `null`,
		"sb-missing":          `null`,
		"sb-bios":             `null`,
		"perm":                `{"ens4":"52:54:00:99:11:02","ens5":"52:54:00:99:12:02"}`,
		"bond":                `["active-backup",["ens4","ens5"]]`,
		"ifnames":             `["eth9"]`,
		"os":                  `{"id":"rocky","pretty_name":"Rocky Linux 9.4 (Blue Onyx)","version_id":"9.4"}`,
	}
	for k, w := range want {
		b, _ := json.Marshal(got[k])
		if string(b) != w {
			t.Errorf("%s: got %s, want %s", k, b, w)
		}
	}
}

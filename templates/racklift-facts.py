#!/usr/bin/python3
# racklift-facts: what an installed node finds about itself, for racklift
# to compare with the cluster plan (provision/nodeapi.Facts).
#
# Runs at the end of the first boot (the rendered user-data fetches it from
# racklift, checks its SHA-256 and runs it as root), prints one JSON
# document, the body of the "ready" callback:
#   {"percent": 100, "detail": "...", "facts": {...}}
# Python 3 standard library only (Debian 12's 3.11, Rocky 9's 3.9, Ubuntu
# 24.04's 3.12). It never guesses: a value it cannot read stays empty (or
# null), and verification reports it as unknown. Served by racklift at
# /lib/racklift-facts.py; rendered from racklift's templates package.

import datetime
import glob
import json
import os
import socket
import subprocess
import sys

FACTS_VERSION = 1
SYS_NET = "/sys/class/net"
SECURE_BOOT_VAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
RESOLV_CONF = "/etc/resolv.conf"
# systemd-resolved's stub listener, and the file listing its real servers.
RESOLVED_STUB = "127.0.0.53"
RESOLVED_CONF = "/run/systemd/resolve/resolv.conf"
PROC_BONDING = "/proc/net/bonding"
OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")

# Problems met while collecting (a command missing, a file unreadable);
# they go into the callback's detail, never into the facts.
notes = []


def read(path):
    """The stripped content of a small text file, or None."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def run_json(args):
    """Runs a command that prints JSON; returns the parsed value or None."""
    try:
        out = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=30, check=True).stdout
        return json.loads(out.decode("utf-8", "replace"))
    except FileNotFoundError:
        notes.append("%s is not installed" % args[0])
    except subprocess.CalledProcessError as e:
        err = e.stderr.decode("utf-8", "replace").strip().splitlines()
        notes.append("%s failed: %s" % (" ".join(args), err[0] if err else "exit %d" % e.returncode))
    except (subprocess.TimeoutExpired, ValueError) as e:
        notes.append("%s: %s" % (" ".join(args), e))
    return None


def to_int(s):
    try:
        return int(s)
    except (TypeError, ValueError):
        return None


def hostname_facts():
    host = socket.gethostname()
    fqdn = ""
    try:
        # The canonical name of our own host name, as the resolver (here
        # /etc/hosts) gives it; empty when it does not resolve.
        for info in socket.getaddrinfo(host, None, 0, socket.SOCK_DGRAM, 0, socket.AI_CANONNAME):
            if info[3]:
                fqdn = info[3]
                break
    except OSError as e:
        notes.append("%s does not resolve: %s" % (host, e))
    return host, fqdn


def bond_info(name):
    """Mode and members of bond name from sysfs, else /proc/net/bonding."""
    mode, members = "", []
    base = os.path.join(SYS_NET, name, "bonding")
    m = read(os.path.join(base, "mode"))
    if m:
        mode = m.split()[0]  # "active-backup 1"
    s = read(os.path.join(base, "slaves"))
    if s is not None:
        members = s.split()
    if not mode or s is None:
        proc = read(os.path.join(PROC_BONDING, name))
        if proc:
            for line in proc.splitlines():
                if line.startswith("Bonding Mode:") and not mode:
                    mode = proc_bond_mode(line.split(":", 1)[1].strip())
                elif line.startswith("Slave Interface:") and s is None:
                    members.append(line.split(":", 1)[1].strip())
    return mode, members


# /proc/net/bonding prints descriptions; sysfs and iproute2 print names.
PROC_BOND_MODES = {
    "load balancing (round-robin)": "balance-rr",
    "fault-tolerance (active-backup)": "active-backup",
    "load balancing (xor)": "balance-xor",
    "fault-tolerance (broadcast)": "broadcast",
    "IEEE 802.3ad Dynamic link aggregation": "802.3ad",
    "transmit load balancing": "balance-tlb",
    "adaptive load balancing": "balance-alb",
}


def proc_bond_mode(desc):
    return PROC_BOND_MODES.get(desc, "")


def proc_perm_macs():
    """Bond members' permanent MACs from /proc/net/bonding/* (a member's
    current MAC is its bond's)."""
    perm = {}
    for path in glob.glob(os.path.join(PROC_BONDING, "*")):
        cur = None
        for line in (read(path) or "").splitlines():
            if line.startswith("Slave Interface:"):
                cur = line.split(":", 1)[1].strip()
            elif line.startswith("Permanent HW addr:") and cur:
                perm[cur] = line.split(":", 1)[1].strip().lower()
    return perm


def interfaces():
    links = {}
    ipdata = run_json(["ip", "-j", "-d", "addr", "show"]) or []
    for e in ipdata:
        if isinstance(e, dict) and e.get("ifname"):
            links[e["ifname"]] = e
    perm = proc_perm_macs()
    try:
        names = sorted(os.listdir(SYS_NET))
    except OSError as e:
        notes.append("cannot list %s: %s" % (SYS_NET, e))
        names = sorted(links)
    out = []
    for name in names:
        sysd = os.path.join(SYS_NET, name)
        # /sys/class/net also holds files (bonding_masters once the bonding
        # module is loaded): only directories (links to devices) are
        # interfaces.
        if name == "lo" or not os.path.isdir(sysd):
            continue
        ip = links.get(name, {})
        info = ip.get("linkinfo") or {}
        iface = {
            "name": name,
            "mac": (read(os.path.join(sysd, "address")) or ip.get("address") or "").lower(),
            "kind": info.get("info_kind", "") or "",
            "state": (read(os.path.join(sysd, "operstate")) or ip.get("operstate") or "").lower(),
            "mtu": to_int(read(os.path.join(sysd, "mtu"))) or ip.get("mtu") or 0,
            "addresses": [],
        }
        p = (ip.get("permaddr") or perm.get(name) or "").lower()
        if p and p != iface["mac"]:
            iface["perm_mac"] = p
        for a in ip.get("addr_info") or []:
            fam, local, plen = a.get("family"), a.get("local"), a.get("prefixlen")
            if not local or plen is None:
                continue
            if fam == "inet" or (fam == "inet6" and a.get("scope") == "global"):
                iface["addresses"].append("%s/%d" % (local, plen))
        master = ip.get("master")
        if not master:
            m = os.path.join(sysd, "master")
            if os.path.islink(m):
                master = os.path.basename(os.readlink(m))
        if master:
            iface["master"] = master
        if iface["kind"] == "bond" or os.path.isdir(os.path.join(sysd, "bonding")):
            iface["kind"] = "bond"
            mode, members = bond_info(name)
            data = info.get("info_data") or {}
            iface["bond"] = {"mode": mode or data.get("mode", ""), "members": members}
        if iface["kind"] == "vlan":
            data = info.get("info_data") or {}
            vid, parent = data.get("id"), ip.get("link") or ""
            if vid is None or not parent:
                vid2, parent2 = proc_vlan(name)
                vid = vid if vid is not None else vid2
                parent = parent or parent2
            iface["vlan"] = {"id": vid or 0, "parent": parent}
        drv = os.path.join(sysd, "device", "driver")
        if os.path.islink(drv):
            iface["driver"] = os.path.basename(os.readlink(drv))
        speed = to_int(read(os.path.join(sysd, "speed")))
        if speed and speed > 0:
            iface["speed_mbps"] = speed
        out.append(iface)
    return out


def proc_vlan(name):
    """VLAN id and parent from /proc/net/vlan/config ("name | id | parent")."""
    for line in (read("/proc/net/vlan/config") or "").splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[0] == name:
            return to_int(parts[1]), parts[2]
    return None, ""


def routes():
    out = []
    for r in run_json(["ip", "-j", "-4", "route", "show", "table", "main"]) or []:
        if not isinstance(r, dict) or not r.get("dev") or r.get("type", "unicast") != "unicast":
            continue
        dst = r.get("dst", "")
        if dst and dst != "default" and "/" not in dst:
            dst += "/32"
        route = {"dst": dst, "dev": r["dev"]}
        if r.get("gateway"):
            route["gateway"] = r["gateway"]
        out.append(route)
    return out


def nameservers(path):
    text = read(path)
    if text is None:
        return None
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 2 and f[0] == "nameserver":
            out.append(f[1])
    return out


def dns():
    main = nameservers(RESOLV_CONF)
    if main is None:
        notes.append("%s is unreadable" % RESOLV_CONF)
        return []
    if RESOLVED_STUB in main:
        # systemd-resolved's stub: its real upstream servers are here.
        real = nameservers(RESOLVED_CONF)
        if real is not None:
            return real
        notes.append("resolv.conf points at systemd-resolved but its resolv.conf is unreadable")
    return main


def by_links(kind):
    """Kernel name -> names under /dev/disk/<kind>/."""
    out = {}
    for path in sorted(glob.glob("/dev/disk/%s/*" % kind)):
        target = os.path.basename(os.path.realpath(path))
        out.setdefault(target, []).append(os.path.basename(path))
    return out


LSBLK_COLS = "NAME,PATH,MAJ:MIN,TYPE,SIZE,SERIAL,MODEL,WWN,ROTA,PTTYPE,FSTYPE"


def sysfs_serial(name):
    """The serial number the kernel shows (virtio-blk, NVMe), for when
    lsblk has none (no udev database)."""
    for p in ("/sys/class/block/%s/serial" % name, "/sys/class/block/%s/device/serial" % name):
        v = read(p)
        if v:
            return v
    return ""


def blkid_probe(path):
    """Partition table and signature of a device, probed by blkid itself:
    for when udev has not (no udev database: lsblk then shows none)."""
    try:
        r = subprocess.run(["blkid", "-p", "-o", "export", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        notes.append("blkid %s: %s" % (path, e))
        return "", ""
    err = r.stderr.decode("utf-8", "replace").strip()
    if r.returncode == 2 and not err:  # nothing found: a blank device
        return "", ""
    if r.returncode != 0:
        notes.append("blkid -p %s: %s" % (path, err or "exit %d" % r.returncode))
        return "", ""
    vals = dict(l.split("=", 1) for l in r.stdout.decode("utf-8", "replace").splitlines() if "=" in l)
    return vals.get("PTTYPE", ""), vals.get("TYPE", "")


def disks():
    data = run_json(["lsblk", "-J", "-b", "-o", LSBLK_COLS + ",MOUNTPOINTS"])
    if data is None:
        # util-linux before 2.37 has MOUNTPOINT only.
        data = run_json(["lsblk", "-J", "-b", "-o", LSBLK_COLS + ",MOUNTPOINT"])
    if not isinstance(data, dict):
        return []
    ids, paths = by_links("by-id"), by_links("by-path")

    def dev(e):
        name = e.get("name") or ""
        mps = e.get("mountpoints")
        if mps is None:
            mps = [e.get("mountpoint")]
        path = e.get("path") or ("/dev/" + name if name else "")
        pttype, fstype = e.get("pttype") or "", e.get("fstype") or ""
        majmin = e.get("maj:min") or ""
        if not pttype and not fstype and majmin and not os.path.exists("/run/udev/data/b" + majmin):
            pttype, fstype = blkid_probe(path)
        d = {
            "name": name,
            "path": path,
            "type": e.get("type") or "",
            "size_bytes": to_int(e.get("size")) or 0,
            "serial": (e.get("serial") or "").strip() or sysfs_serial(name),
            "model": (e.get("model") or "").strip(),
            "wwn": e.get("wwn") or "",
            "rotational": e.get("rota") in (True, 1, "1"),
            "pttype": pttype,
            "fstype": fstype,
            "mountpoints": [m for m in mps if m],
            "by_id": ids.get(name, []),
            "by_path": paths.get(name, []),
        }
        parts, holders = [], []
        for c in e.get("children") or []:
            (parts if c.get("type") == "part" else holders).append(dev(c))
        if parts:
            d["partitions"] = parts
        if holders:
            d["holders"] = holders
        return {k: v for k, v in d.items() if v not in ("", [], False) or k in ("name", "path", "type", "size_bytes")}

    return [dev(e) for e in data.get("blockdevices") or [] if e.get("type") == "disk"]


def os_release():
    out = {"id": "", "version_id": "", "pretty_name": ""}
    text = None
    for path in OS_RELEASE:
        text = read(path)
        if text is not None:
            break
    if text is None:
        notes.append("no os-release")
        return out
    for line in text.splitlines():
        if "=" not in line or line.startswith("#"):
            continue
        k, v = line.split("=", 1)
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
            v = v[1:-1]
        key = {"ID": "id", "VERSION_ID": "version_id", "PRETTY_NAME": "pretty_name"}.get(k.strip())
        if key:
            out[key] = v
    return out


def secure_boot(uefi):
    """The firmware's SecureBoot variable: 4 bytes of attributes, then the
    value (1 = on). None when not UEFI or unreadable."""
    if not uefi:
        return None
    try:
        with open(SECURE_BOOT_VAR, "rb") as f:
            b = f.read(5)
    except OSError:
        notes.append("the SecureBoot EFI variable is unreadable")
        return None
    if len(b) < 5:
        return None
    return b[4] == 1


def ssh_host_keys():
    out = []
    for path in sorted(glob.glob("/etc/ssh/ssh_host_*_key.pub")):
        f = (read(path) or "").split()
        if len(f) >= 2:
            out.append(f[0] + " " + f[1])
    return out


def main():
    host, fqdn = hostname_facts()
    uefi = os.path.isdir("/sys/firmware/efi")
    facts = {
        "version": FACTS_VERSION,
        "collected_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "hostname": host,
        "fqdn": fqdn,
        "interfaces": interfaces(),
        "routes": routes(),
        "dns": dns(),
        "disks": disks(),
        "os": os_release(),
        "kernel": os.uname().release,
        "uefi": uefi,
        "secure_boot": secure_boot(uefi),
        "ssh_host_keys": ssh_host_keys(),
    }
    detail = "first boot finished: facts of %s (%d interfaces, %d disks, %s)" % (
        host, len(facts["interfaces"]), len(facts["disks"]), facts["os"]["pretty_name"] or "unknown OS")
    if notes:
        detail += "; could not read: " + "; ".join(notes)
    json.dump({"percent": 100, "detail": detail[:900], "facts": facts}, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

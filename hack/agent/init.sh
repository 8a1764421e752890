#!/bin/busybox sh
# /init of racklift's deploy agent initramfs (hack/agent/init.sh, packed
# by hack/agent/build.sh into out/agent/initrd-base.img). It mounts the
# kernel's file systems, loads the modules listed in
# /etc/racklift/modules (NICs, disk controllers, file systems; in load
# order), brings up the NIC named by racklift.mac= (or iPXE's BOOTIF=) with
# udhcpc, and execs `/bin/racklift agent`, which racklift appends to this
# initramfs as a second cpio archive when it serves it.
#
# Kernel arguments: racklift.server=URL racklift.mac=MAC (no secret).
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /run /mnt
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /run/racklift
exec </dev/console >/dev/console 2>&1
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "RACKLIFT-AGENT: $*"; }
up() { cut -d' ' -f1 /proc/uptime; }
hold() {
	say "error: $*"
	say "the node stays in the deploy agent; fix the cause and power-cycle it to retry"
	while :; do sleep 3600; done
}

say "init kernel=$(cat /etc/racklift/kernel) uptime=$(up)"

n=0
for m in $(cat /etc/racklift/modules); do
	insmod "/lib/modules/$m" 2>/dev/null && n=$((n + 1))
done
say "modules loaded=$n uptime=$(up)"

WANTMAC=
set -f # no globbing of arguments
for a in $(cat /proc/cmdline); do
	case "$a" in
	racklift.mac=*) WANTMAC="${a#*=}" ;;
	BOOTIF=*) [ -n "$WANTMAC" ] || WANTMAC="$(echo "${a#*=}" | sed 's/^01-//; s/-/:/g')" ;;
	esac
done
set +f
WANTMAC="$(echo "$WANTMAC" | tr 'A-F' 'a-f' | sed 's/-/:/g')"
[ -n "$WANTMAC" ] || hold "no racklift.mac= (or BOOTIF=) on the kernel command line"

# NIC drivers may take seconds to probe: wait up to 30 s for the NIC.
IF=
for i in $(seq 150); do
	for d in /sys/class/net/*; do
		[ "$(cat "$d/address" 2>/dev/null)" = "$WANTMAC" ] && IF="${d##*/}" && break
	done
	[ -n "$IF" ] && break
	sleep 0.2
done
if [ -z "$IF" ]; then
	seen=
	for d in /sys/class/net/*; do seen="$seen ${d##*/}=$(cat "$d/address")"; done
	hold "no NIC with MAC $WANTMAC (NICs:$seen); is its driver missing from the agent's initramfs?"
fi
ip link set lo up
ip link set "$IF" up
# Wait up to 20 s for the link (switch ports with spanning tree take long).
for i in $(seq 100); do
	[ "$(cat "/sys/class/net/$IF/carrier" 2>/dev/null)" = 1 ] && break
	sleep 0.2
done
ok=0
for try in 1 2 3; do
	if timeout 60 udhcpc -i "$IF" -f -q -n -t 8 -T 3 -s /etc/racklift/udhcpc.script >/tmp/udhcpc.log 2>&1; then
		ok=1
		break
	fi
done
[ "$ok" = 1 ] || { cat /tmp/udhcpc.log; hold "no DHCP lease on $IF ($WANTMAC) after 3 tries"; }
say "dhcp if=$IF ip=$(cat /tmp/ip) uptime=$(up)"

[ -x /bin/racklift ] || hold "/bin/racklift is missing: this initramfs must be served by racklift, which appends its own binary"
exec /bin/racklift agent

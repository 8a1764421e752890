#!/bin/busybox sh
# /init of racklift's test-bed initramfs (hack/testbed/init.sh, packed by
# BuildPayload). It plays a tiny "installer": DHCP, fetch the node's config,
# post progress callbacks, mark the disk, power off. Kernel arguments (see
# doc.go): racklift.config= racklift.callback= [racklift.token=] racklift.node=
# racklift.mode=install|check racklift.reboot=1 racklift.mac= BOOTIF=
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /run
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

say() { echo "RACKLIFT-TESTBED: $*"; }
up() { cut -d' ' -f1 /proc/uptime; }

CONFIG= CALLBACK= TOKEN= NODE= MODE=install REBOOT=0 WANTMAC=
set -f # no globbing of URLs
for a in $(cat /proc/cmdline); do
	case "$a" in
	racklift.config=*) CONFIG="${a#*=}" ;;
	racklift.callback=*) CALLBACK="${a#*=}" ;;
	racklift.token=*) TOKEN="${a#*=}" ;;
	racklift.node=*) NODE="${a#*=}" ;;
	racklift.mode=*) MODE="${a#*=}" ;;
	racklift.reboot=*) REBOOT="${a#*=}" ;;
	racklift.mac=*) WANTMAC="${a#*=}" ;;
	BOOTIF=*) WANTMAC="$(echo "${a#*=}" | sed 's/^01-//; s/-/:/g')" ;;
	esac
done
set +f
WANTMAC="$(echo "$WANTMAC" | tr 'A-F' 'a-f')"
say "init ok uptime=$(up) node=$NODE mode=$MODE"

finish() {
	sync
	say "done uptime=$(up)"
	if [ "$REBOOT" = 1 ]; then reboot -f; else poweroff -f; fi
	sleep 30
}

# post PHASE PERCENT DETAIL: POST {CALLBACK}/{PHASE} with the token header.
post() {
	[ -n "$CALLBACK" ] || return 0
	body="{\"percent\":$2,\"detail\":\"$3\"}"
	for try in 1 2 3; do
		if timeout 15 wget -q -O /dev/null \
			--header "X-Racklift-Token: $TOKEN" \
			--header "Content-Type: application/json" \
			--post-data "$body" "$CALLBACK/$1"; then
			say "$1 ok"
			return 0
		fi
		sleep 1
	done
	say "$1 failed"
	return 1
}

fail() {
	say "error: $*"
	post error -1 "testbed: $*" || true
	finish
}

n=0
for m in $(cat /etc/racklift-modules); do
	insmod "/lib/modules/$m" 2>/dev/null && n=$((n + 1))
done
say "modules ok loaded=$n"

# Pick the NIC: the one with racklift.mac / BOOTIF, else the first non-lo.
IF=
for i in $(seq 50); do
	for d in /sys/class/net/*; do
		name="${d##*/}"
		[ "$name" = lo ] && continue
		if [ -z "$WANTMAC" ] || [ "$(cat "$d/address")" = "$WANTMAC" ]; then
			IF="$name"
			break
		fi
	done
	[ -n "$IF" ] && break
	sleep 0.2
done
[ -n "$IF" ] || fail "no network interface"
ip link set lo up
ip link set "$IF" up
if ! timeout 60 udhcpc -i "$IF" -f -q -n -t 10 -T 2 -s /etc/udhcpc.script >/tmp/udhcpc.log 2>&1; then
	cat /tmp/udhcpc.log
	fail "dhcp on $IF failed"
fi
say "dhcp ok if=$IF ip=$(cat /tmp/ip) uptime=$(up)"

[ -n "$CONFIG" ] || fail "no racklift.config= on the command line"
timeout 20 wget -q -O /tmp/config "$CONFIG" || fail "cannot fetch $CONFIG"
if [ -n "$NODE" ] && ! grep -q -F -- "$NODE" /tmp/config; then
	fail "config does not mention $NODE"
fi
# The token comes with the config when the command line has none (racklift
# never puts a secret on a kernel command line: the boot script is public).
if [ -z "$TOKEN" ]; then
	TOKEN="$(sed -n 's/.*X-Racklift-Token: \([A-Za-z0-9._~-]*\).*/\1/p' /tmp/config | head -n 1)"
fi
say "config ok bytes=$(wc -c </tmp/config)"

MARK="racklift-installed $NODE"
case "$MODE" in
install)
	post pre 5 "testbed payload started" || fail "callback pre"
	post progress 50 "testbed payload halfway" || fail "callback progress"
	if [ -b /dev/vda ]; then
		echo "$MARK" | dd of=/dev/vda bs=512 count=1 conv=sync,notrunc 2>/dev/null || fail "cannot write /dev/vda"
		sync
		say "disk ok wrote=/dev/vda"
	else
		say "disk none"
	fi
	post installed 100 "testbed payload installed" || fail "callback installed"
	;;
check)
	[ -b /dev/vda ] || fail "check: no disk"
	got="$(dd if=/dev/vda bs=512 count=1 2>/dev/null | tr -d '\000' | head -n 1)"
	[ "$got" = "$MARK" ] || fail "check: disk says '$got'"
	say "disk ok found=$NODE"
	post first-boot 100 "testbed disk marker found" || fail "callback first-boot"
	post ready 100 "testbed node ready" || fail "callback ready"
	;;
*)
	fail "unknown racklift.mode=$MODE"
	;;
esac
finish

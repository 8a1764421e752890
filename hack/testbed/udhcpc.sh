#!/bin/sh
# udhcpc event script of the test-bed initramfs (hack/testbed/udhcpc.sh).
case "$1" in
deconfig)
	ip addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound | renew)
	ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
	echo "$ip" >/tmp/ip
	if [ -n "$router" ]; then
		for r in $router; do
			ip route add default via "$r" dev "$interface" && break
		done
	fi
	;;
esac
exit 0

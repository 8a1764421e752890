#!/bin/sh
# udhcpc event script of racklift's deploy agent initramfs
# (hack/agent/udhcpc.sh): configures the address, the default route and
# /etc/resolv.conf (Go's resolver reads it).
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
			ip route replace default via "$r" dev "$interface" && break
		done
	fi
	: >/etc/resolv.conf
	[ -n "$domain" ] && echo "search $domain" >>/etc/resolv.conf
	for d in $dns; do
		echo "nameserver $d" >>/etc/resolv.conf
	done
	;;
esac
exit 0

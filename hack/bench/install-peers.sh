#!/usr/bin/env bash
# Installs the benchmark peers (only those missing) without letting their
# packages start or enable a service: a DHCP/TFTP/HTTP server must never be
# left running on the test host. Debian: kea-dhcp4-server, dnsmasq-base,
# tftpd-hpa, nginx-light, wrk.
set -euo pipefail

pkgs=(kea-dhcp4-server dnsmasq-base tftpd-hpa nginx-light wrk)
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "bench: need root to install: ${missing[*]}" >&2
  exit 1
fi
echo "bench: installing ${missing[*]}"
added_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  added_policy=1
fi
cleanup() { if [ "$added_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
# policy-rc.d keeps the services from starting now; also keep them from
# starting on the next boot. Stop any that started anyway (no systemd here
# means these calls may fail: that is fine).
for svc in kea-dhcp4-server kea-ctrl-agent kea-dhcp6-server kea-dhcp-ddns-server tftpd-hpa nginx dnsmasq; do
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
  if [ -e "/etc/init.d/$svc" ] && command -v update-rc.d >/dev/null 2>&1; then
    update-rc.d "$svc" disable >/dev/null 2>&1 || true
  fi
done
echo "bench: peers installed"

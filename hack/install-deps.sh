#!/usr/bin/env bash
# Installs the Debian packages racklift's tests use, only those missing.
# Package services are kept from starting while installing (a test machine
# must not suddenly run a DHCP server or cloud-init on boot).
set -euo pipefail

pkgs=(
  curl atftp                       # TFTP clients
  busybox-static udhcpc isc-dhcp-client iproute2 dnsmasq-base  # DHCP peers, netns
  ipxe ipxe-qemu qemu-system-x86 ovmf cpio   # PXE clients (QEMU) and iPXE binaries
  openipmi ipmitool                # BMC simulator and client
  cloud-init python3-jsonschema    # config validators
  grub-common                      # grub-script-check (Secure Boot GRUB configs)
  xorriso                          # builds test ISO images (media reader)
  chromium                         # headless browser for dashboard tests
  ansible-core python3-ceph-common shellcheck openssh-client  # hand-off checked by the deployers' parsers
  gdisk e2fsprogs dosfstools mtools util-linux  # deploy agent tests: sgdisk, mkfs.ext4/debugfs, mkfs.vfat/mcopy, wipefs/blkid
  sbsigntool zstd                  # deploy agent: sbverify checks the signed kernel/shim/GRUB; zstd reads initrds
  mmdebstrap qemu-utils fdisk      # OS images: make image-debian12 (with gdisk e2fsprogs dosfstools mtools above), qcow2 tests
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
# cloud-init must never configure the test host.
mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled
added_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  added_policy=1
fi
cleanup() { if [ "$added_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"

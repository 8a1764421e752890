#!/usr/bin/env bash
# Builds racklift's Debian 12 disk image (make image-debian12), as root:
#
#   out/debian12.raw          raw GPT disk image, 2 GiB virtual, sparse;
#                             import it with `racklift image import debian12 out/debian12.raw`
#   out/debian12.raw.inputs   what it was built from (reused while unchanged)
#
# One image boots on BIOS and on UEFI with Secure Boot:
#   p1  1 MiB   BIOS boot partition: GRUB's core.img (boot.img in the MBR)
#   p2  64 MiB  EFI system partition (FAT32): Debian's Microsoft-signed shim and
#               Debian-signed GRUB in \EFI\debian\ (+ its grub.cfg) and in the
#               fallback path \EFI\BOOT\ (BOOTX64.EFI = shim)
#   p3  rest    ext4 root, last, so the deploy agent (and cloud-init's growpart)
#               can grow it to the end of the OS disk
# Both loaders read one /boot/grub/grub.cfg: root=UUID=... console=tty0
# console=ttyS0,115200n8.
#
# Why 2 GiB: the root file system holds about 1 GiB of packages; the rest is
# room for the first boot (cloud-init, logs, a few packages) should the OS disk
# not be grown, and every OS disk is larger. Only written blocks are stored
# and streamed (about half of it), so a larger image would cost nothing but
# the hash of its zeros at import; a smaller one could not boot usefully.
#
# Contents: Debian 12 from the mirror this machine's apt is configured with
# (hack/lib/apt-sources.sh), by mmdebstrap: systemd, linux-image-amd64,
# cloud-init (NoCloud only, ifupdown renderer: cloud-init 22.4's networkd
# renderer writes no .netdev for bonds or VLANs), ifupdown, ifenslave, vlan,
# resolvconf (applies the dns-nameservers cloud-init writes), net-tools (its
# eni renderer writes network-config routes as "post-up route add"), openssh-server,
# chrony, grub-pc, shim-signed, grub-efi-amd64-signed, growpart, curl,
# ca-certificates, iproute2, python3 (cloud-init's; racklift's facts script
# uses it, with lsblk from util-linux). No user, no password, no SSH host keys,
# an empty machine-id: all made at first boot.
#
# No loop device and no mount: sgdisk partitions the file, mkfs.ext4 -d and
# mkfs.vfat --offset write the file systems in place, mtools fills the ESP,
# and GRUB's boot.img and core.img are embedded by hand (grub-bios-setup can
# only write to a device it can probe). mmdebstrap mounts /proc, /sys and /dev
# in the chroot and always unmounts them; the trap below is a safety net.
#
# Downloads are cached in hack/.cache/image/apt. The image is rebuilt only when
# its inputs change: this script, hack/image/debian12/, hack/lib/apt-sources.sh,
# the apt sources, the size and SOURCE_DATE_EPOCH (default: the time of the
# last commit of those files). IMAGE_FORCE=1 rebuilds anyway (e.g. to pick up
# a newer mirror snapshot).
#
# Environment: IMAGE_OUT (default out/debian12.raw), IMAGE_SIZE_MIB (2048),
# IMAGE_FORCE=1, IMAGE_KEEP_ROOTFS=1 keeps the unpacked root for inspection.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache="$repo/hack/.cache/image"
work="$cache/work"
out="${IMAGE_OUT:-$repo/out/debian12.raw}"
size_mib="${IMAGE_SIZE_MIB:-2048}"
suite=bookworm
data="$here/debian12"

say() { printf '[image %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf 'image-debian12: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (mmdebstrap builds the root file system as root)"
case "$size_mib" in '' | *[!0-9]*) die "IMAGE_SIZE_MIB=$size_mib: want a number of MiB";; esac
[ "$size_mib" -ge 1024 ] || die "IMAGE_SIZE_MIB=$size_mib: the root file system needs at least 1024"

# --- the mirror: whatever this machine's apt uses ---------------------------
# shellcheck source=SCRIPTDIR/../lib/apt-sources.sh
. "$repo/hack/lib/apt-sources.sh"
sources=$(pick_sources "$suite")
printf '%s\n' "$sources" | has_suite "$suite" ||
  die "no '$suite' entry in this machine's apt sources (/etc/apt/sources.list.d/*.sources or /etc/apt/sources.list)"

# --- the packages ---------------------------------------------------------------
pkgs=(
  systemd systemd-sysv udev dbus kmod procps util-linux usr-is-merged
  linux-image-amd64 initramfs-tools zstd
  grub-pc shim-signed grub-efi-amd64-signed
  cloud-init cloud-guest-utils gdisk e2fsprogs dosfstools
  ifupdown ifenslave vlan isc-dhcp-client resolvconf net-tools iproute2 iputils-ping netbase
  openssh-server sudo chrony curl ca-certificates
)
# Kernel modules no server needs (sound, video capture, Wi-Fi, Bluetooth,
# staging, CAN, consumer GPUs) are never unpacked (the patterns match module
# files only: dpkg fails on excluded directories with kept children). Docs,
# man pages and translations are removed by customize.sh (copyright files
# stay).
dpkgopts=()
for m in sound drivers/media drivers/net/wireless net/wireless net/mac80211 net/bluetooth \
  drivers/bluetooth drivers/staging drivers/iio drivers/isdn drivers/gpu/drm/amd \
  drivers/gpu/drm/nouveau drivers/gpu/drm/radeon drivers/gpu/drm/i915 drivers/net/can net/can; do
  dpkgopts+=(--dpkgopt="path-exclude=/lib/modules/*/kernel/$m/*.ko*" --dpkgopt="path-exclude=/usr/lib/modules/*/kernel/$m/*.ko*")
done

# --- inputs: reuse the image while they are the same ----------------------------
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct -- hack/image hack/lib/apt-sources.sh 2>/dev/null || true)
  [ -n "$SOURCE_DATE_EPOCH" ] || SOURCE_DATE_EPOCH=1735689600
fi
export SOURCE_DATE_EPOCH
inputs=$(
  {
    printf 'size %s\nepoch %s\npackages %s\n' "$size_mib" "$SOURCE_DATE_EPOCH" "${pkgs[*]}"
    printf '%s\n' "$sources"
    # Contents only: the same inputs give the same key wherever the
    # script is run from.
    sha256sum < "$here/build-debian12.sh"
    sha256sum < "$repo/hack/lib/apt-sources.sh"
    (cd "$data" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-64
)
if [ "${IMAGE_FORCE:-0}" != 1 ] && [ -f "$out" ] && [ "$(cat "$out.inputs" 2>/dev/null)" = "$inputs" ]; then
  say "reusing $out (inputs $inputs unchanged; IMAGE_FORCE=1 rebuilds)"
  exit 0
fi

# --- host tools (Debian packages only) -------------------------------------------
need=(mmdebstrap dosfstools mtools e2fsprogs gdisk)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing build tools: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Identifiers derived from the inputs: the same inputs give the same image.
id_hex() { printf '%s %s' "$inputs" "$1" | sha256sum | cut -c1-32; }
as_uuid() { local h; h=$(id_hex "$1"); printf '%s-%s-4%s-8%s-%s' "${h:0:8}" "${h:8:4}" "${h:13:3}" "${h:17:3}" "${h:20:12}"; }
root_uuid=$(as_uuid root)
esp_id=$(id_hex esp | cut -c1-8 | tr a-f A-F)
esp_uuid="${esp_id:0:4}-${esp_id:4:4}"
disk_guid=$(as_uuid disk)

# --- clean up on any exit: never leave a mount or a half image behind ------------
tmp="$out.tmp"
cleanup() {
  local m
  for m in $(findmnt -rn -o TARGET 2>/dev/null | grep -F "$work/" | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  # A failed mmdebstrap never reaches its sync-out hook: keep what it
  # downloaded for the next run.
  if [ -d "$work/rootfs/var/cache/apt/archives" ]; then
    find "$work/rootfs/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec cp -n -t "$cache/apt" {} + 2>/dev/null || true
  fi
  if [ "${IMAGE_KEEP_ROOTFS:-0}" != 1 ]; then rm -rf "$work/rootfs"; fi
  rm -f "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
mkdir -p "$cache/apt" "$work" "$(dirname "$out")"
rm -rf "$work/rootfs" "$work/overlay"
printf '%s\n' "$sources" > "$work/sources.list"
say "mirror (from this machine's apt sources):"
sed 's/^/    /' "$work/sources.list"

cp -r "$data/rootfs" "$work/overlay"
chown -R 0:0 "$work/overlay"
find "$work/overlay" -type d -exec chmod 0755 {} +
find "$work/overlay" -type f -exec chmod 0644 {} +
find "$work/overlay" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# --- the root file system ----------------------------------------------------------
say "mmdebstrap $suite (packages cached in ${cache#"$repo"/}/apt)"
mmdebstrap --mode=root --variant=minbase --format=directory \
  --include="$(IFS=,; echo "${pkgs[*]}")" \
  --aptopt='APT::Install-Recommends "false"' \
  --aptopt='Acquire::Languages "none"' \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  "${dpkgopts[@]}" \
  --skip=essential/unlink \
  --setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
  --setup-hook="sync-in '$cache/apt' /var/cache/apt/archives" \
  --essential-hook="tar -C '$work/overlay' --numeric-owner -cf - . | tar -C \"\$1\" --numeric-owner -xpf - --no-overwrite-dir" \
  --essential-hook="copy-in '$data/debconf.txt' /tmp" \
  --essential-hook='chroot "$1" debconf-set-selections /tmp/debconf.txt && rm -f "$1"/tmp/debconf.txt' \
  --customize-hook="sync-out /var/cache/apt/archives '$cache/apt'" \
  --customize-hook="chroot \"\$1\" /usr/bin/env ROOT_UUID='$root_uuid' ESP_UUID='$esp_uuid' /bin/bash -euo pipefail < '$data/customize.sh'" \
  "$suite" "$work/rootfs" - < "$work/sources.list"
rootfs="$work/rootfs"
kver=$(basename "$(ls -d "$rootfs"/lib/modules/* | sort -V | tail -1)")
say "kernel $kver, root file system $(du -sm --apparent-size "$rootfs" | cut -f1) MiB"

# The ESP's files were gathered in the chroot (customize.sh); they are not
# part of the root file system.
esp_src="$rootfs/usr/local/lib/racklift-esp"
[ -f "$esp_src/EFI/BOOT/BOOTX64.EFI" ] || die "customize.sh did not gather the ESP files"
mv "$esp_src" "$work/esp"
trap 'rm -rf "$work/esp"; cleanup' EXIT
core="$rootfs/boot/grub/i386-pc/core.img"
bootimg="$rootfs/boot/grub/i386-pc/boot.img"

# --- the disk ------------------------------------------------------------------------
# Sectors of 512 bytes; everything 1 MiB aligned.
bios_start=2048 bios_end=4095
esp_start=4096 esp_end=$((4096 + 64 * 2048 - 1))
root_start=$((esp_end + 1))
rm -f "$tmp"
truncate -s "${size_mib}M" "$tmp"
sgdisk --disk-guid="$disk_guid" \
  --new=1:$bios_start:$bios_end --typecode=1:EF02 --change-name=1:BIOS --partition-guid=1:"$(as_uuid p1)" \
  --new=2:$esp_start:$esp_end --typecode=2:EF00 --change-name=2:EFI --partition-guid=2:"$(as_uuid p2)" \
  --new=3:$root_start:0 --typecode=3:8304 --change-name=3:root --partition-guid=3:"$(as_uuid p3)" \
  "$tmp" >/dev/null
root_end=$(sgdisk --info=3 "$tmp" | awk '/^Last sector:/ { print $3 }')
[ -n "$root_end" ] || die "sgdisk did not create the root partition"

say "ext4 root (UUID $root_uuid)"
# -d copies the root file system into the partition, at its offset in the file.
mkfs.ext4 -q -F -L root -U "$root_uuid" -E "offset=$((root_start * 512)),root_owner=0:0" \
  -d "$rootfs" "$tmp" "$(((root_end - root_start + 1) / 2))k"

say "ESP (FAT32, volume id $esp_uuid)"
# 512-byte clusters: 64 MiB holds enough of them (65525+) for a valid FAT32.
# mkfs.vfat warns that the file is larger than the file system it makes.
out_vfat=$(mkfs.vfat -F 32 -s 1 -n EFI -i "$esp_id" --offset "$esp_start" "$tmp" $(((esp_end - esp_start + 1) / 2)) 2>&1) ||
  { printf '%s\n' "$out_vfat" >&2; die "mkfs.vfat failed"; }
export MTOOLS_SKIP_CHECK=1
espimg="$tmp@@$((esp_start * 512))"
mmd -i "$espimg" ::/EFI ::/EFI/debian ::/EFI/BOOT
for f in "$work"/esp/EFI/debian/* "$work"/esp/EFI/BOOT/*; do
  rel=${f#"$work/esp"}
  mcopy -i "$espimg" "$f" "::$rel"
done
mdir -i "$espimg" -/ -b ::/EFI | sed 's/^/    /'

say "GRUB for BIOS: boot.img in the MBR, core.img in the BIOS boot partition"
# What grub-bios-setup does for an embedded core.img, by hand:
#  - MBR bytes 0..439 come from boot.img (the BPB area 0x03..0x59 stays zero,
#    bytes 440.. keep the protective MBR's disk signature and partition table);
#  - boot.img's kernel_sector (offset 0x5c, 64-bit LE) = the first sector of
#    core.img; its boot drive check (0x66, a 2-byte jump) becomes two NOPs
#    (hard disk: trust the drive number the BIOS passes in DL);
#  - core.img's first sector (diskboot.img) ends with a block list whose
#    first entry's start (offset 0x1f4, 64-bit LE) is the sector after it;
#    grub-mkimage already wrote its length and load segment.
core_sectors=$(( ($(stat -c %s "$core") + 511) / 512 ))
[ "$core_sectors" -le $((bios_end - bios_start + 1)) ] || die "core.img ($core_sectors sectors) does not fit the BIOS boot partition"
le64() { local v=$1 i; for i in 0 1 2 3 4 5 6 7; do printf "\\$(printf %03o $(((v >> (8 * i)) & 255)))"; done; }
poke() { dd of="$tmp" bs=1 seek="$1" conv=notrunc status=none; }
dd if="$bootimg" of="$tmp" bs=440 count=1 conv=notrunc status=none
head -c $((0x5a - 3)) /dev/zero | poke 3
le64 "$bios_start" | poke $((0x5c))
printf '\220\220' | poke $((0x66))
dd if="$core" of="$tmp" bs=512 seek="$bios_start" conv=notrunc status=none
le64 $((bios_start + 1)) | poke $((bios_start * 512 + 0x1f4))

sgdisk --verify "$tmp" | grep -q 'No problems found' || { sgdisk --verify "$tmp" >&2; die "the partition table does not verify"; }

mv -f "$tmp" "$out"
printf '%s\n' "$inputs" > "$out.inputs"
end=$(date +%s)
say "built $out in $((end - start)) s: $((size_mib)) MiB virtual, $(($(du -B1 "$out" | cut -f1) / 1024 / 1024)) MiB allocated"
say "  kernel $kver; root UUID $root_uuid; ESP $esp_uuid"
say "  next: racklift image import debian12 $out"

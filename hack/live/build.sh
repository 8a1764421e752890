#!/usr/bin/env bash
# Builds the racklift USB live image (make live-image), as root:
#
#   out/racklift-live.iso   hybrid ISO: BIOS (GRUB, El Torito + MBR) and UEFI
#                           (Debian's signed shim + GRUB, so Secure Boot works),
#                           dd it to a USB stick or boot it as a CD.
#
# Contents: a Debian 12 minbase made by mmdebstrap from the mirror configured
# in this machine's apt sources, live-boot, the static bin/racklift and the
# field tools (ipmitool tcpdump ethtool lldpd iproute2 nano vim-tiny ...).
# Downloads are cached in hack/.cache/live/apt between runs. Only Debian
# packages are fetched. Timestamps come from SOURCE_DATE_EPOCH (default: the
# time of the last git commit), so the same inputs give the same image.
#
# Why mmdebstrap and not live-build: one command builds the root file system
# with apt (about 2 minutes here), it is reproducible by design with
# SOURCE_DATE_EPOCH, its sync-in/sync-out hooks give the download cache, and it
# mounts and always unmounts /proc, /sys and /dev in the chroot itself.
# live-build wraps debootstrap in a large config tree, is slower, and keeps
# its own mirror settings. The ISO is assembled here with grub-mkimage,
# mksquashfs and xorriso, so every byte of the boot path is visible below.
#
# Environment: LIVE_OUT (default out/racklift-live.iso), LIVE_COMP (xz|zstd,
# default xz), LIVE_KEEP_ROOTFS=1 keeps the unpacked rootfs for inspection.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache="$repo/hack/.cache/live"
work="$cache/work"
out="${LIVE_OUT:-$repo/out/racklift-live.iso}"
comp="${LIVE_COMP:-xz}"
suite=bookworm
bin="$repo/bin/racklift"

say() { printf '[live %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf 'live-image: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (mmdebstrap builds the root file system as root)"
[ -x "$bin" ] || die "$bin is missing: run make build first"
file_out=$(file -b "$bin" 2>/dev/null || true)
case "$file_out" in *dynamically*) die "$bin is dynamically linked; build it with make build (CGO_ENABLED=0)";; esac

# --- host tools (Debian packages only) -------------------------------------
need=(mmdebstrap squashfs-tools grub-pc-bin grub-common xorriso mtools dosfstools)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing build tools: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- the mirror: whatever this machine's apt uses ---------------------------
# host_sources / pick_sources (hack/lib/apt-sources.sh) keep the "deb" entries
# of bookworm, bookworm-updates and bookworm-security. Nothing is hard-coded:
# a machine behind a local mirror builds from that mirror.
# shellcheck source=SCRIPTDIR/../lib/apt-sources.sh
. "$repo/hack/lib/apt-sources.sh"
sources=$(pick_sources "$suite")
printf '%s\n' "$sources" | has_suite "$suite" ||
  die "no '$suite' entry in this machine's apt sources (/etc/apt/sources.list.d/*.sources or /etc/apt/sources.list)"

# --- reproducibility ----------------------------------------------------------
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 1735689600)
fi
export SOURCE_DATE_EPOCH
version=$("$bin" version 2>/dev/null | awk '{ print $NF; exit }')
# A volume ID that changes with the build keeps two sticks apart in GRUB.
build_id=$(printf '%s %s' "$version" "$SOURCE_DATE_EPOCH" | sha256sum | cut -c1-12)

# --- clean up on any exit: never leave a mount behind -------------------------
cleanup() {
  local m
  # mmdebstrap unmounts what it mounts; this is a safety net for an abort.
  for m in $(findmnt -rn -o TARGET 2>/dev/null | grep -F "$work/" | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  if [ "${LIVE_KEEP_ROOTFS:-0}" != 1 ]; then rm -rf "$work/rootfs"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
mkdir -p "$cache/apt" "$work" "$(dirname "$out")"
rm -rf "$work/rootfs" "$work/iso" "$work/efi" "$work/overlay"
mkdir -p "$work/iso/live" "$work/iso/boot/grub" "$work/iso/.disk" "$work/efi"

say "mirror (from this machine's apt sources):"
printf '%s\n' "$sources" | sed 's/^/    /'
printf '%s\n' "$sources" > "$work/sources.list"

# --- the overlay: our files, owned by root ------------------------------------
cp -r "$here/rootfs" "$work/overlay"
install -D -m 0755 "$bin" "$work/overlay/usr/local/bin/racklift"
install -D -m 0644 "$repo/LICENSE" "$work/overlay/usr/share/doc/racklift/LICENSE"
install -D -m 0644 "$repo/boot/ipxe/bin/COPYING" "$work/overlay/usr/share/doc/racklift/ipxe/COPYING"
install -D -m 0644 "$repo/boot/ipxe/bin/SOURCE.md" "$work/overlay/usr/share/doc/racklift/ipxe/SOURCE.md"
printf 'racklift live %s (%s)\n' "$version" "$build_id" > "$work/overlay/etc/racklift-live-release"
chown -R 0:0 "$work/overlay"
find "$work/overlay" -type d -exec chmod 0755 {} +
find "$work/overlay" -type f -exec chmod go-w {} +
chmod 0755 "$work/overlay"/usr/local/lib/racklift-live/* "$work/overlay"/usr/local/sbin/*
find "$work/overlay" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# --- the root file system -----------------------------------------------------
pkgs=(
  systemd systemd-sysv udev dbus kmod procps util-linux usr-is-merged
  linux-image-amd64 initramfs-tools zstd live-boot
  iproute2 iputils-ping ethtool tcpdump lldpd ipmitool pciutils
  nano vim-tiny less
  e2fsprogs dosfstools fdisk
)
# Kernel modules of hardware a provisioning laptop does not use (sound,
# video capture, Wi-Fi, Bluetooth, InfiniBand, staging, CAN, the big GPU
# drivers whose firmware is non-free anyway) are never unpacked. The patterns
# match module files only: dpkg fails on excluded directories with kept
# children. Docs, man pages and translations are removed by customize.sh.
dpkgopts=()
for m in sound drivers/media drivers/net/wireless net/wireless net/mac80211 net/bluetooth \
  drivers/bluetooth drivers/infiniband drivers/staging drivers/iio drivers/isdn \
  drivers/gpu/drm/amd drivers/gpu/drm/nouveau drivers/gpu/drm/radeon drivers/net/can net/can; do
  dpkgopts+=(--dpkgopt="path-exclude=/lib/modules/*/kernel/$m/*.ko*" --dpkgopt="path-exclude=/usr/lib/modules/*/kernel/$m/*.ko*")
done

say "mmdebstrap $suite (packages cached in ${cache#"$repo"/}/apt)"
mmdebstrap --mode=root --variant=minbase --format=directory \
  --include="$(IFS=,; echo "${pkgs[*]}")" \
  --aptopt='APT::Install-Recommends "false"' \
  --aptopt='Acquire::Languages "none"' \
  "${dpkgopts[@]}" \
  --skip=essential/unlink \
  --setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
  --setup-hook="sync-in '$cache/apt' /var/cache/apt/archives" \
  --essential-hook='mkdir -p "$1"/etc/initramfs-tools/conf.d && printf "COMPRESS=zstd\n" > "$1"/etc/initramfs-tools/conf.d/racklift-live.conf' \
  --customize-hook="sync-out /var/cache/apt/archives '$cache/apt'" \
  --customize-hook="tar -C '$work/overlay' --numeric-owner -cf - . | tar -C \"\$1\" --numeric-owner -xpf - --no-overwrite-dir" \
  --customize-hook="chroot \"\$1\" /bin/bash -euo pipefail < '$here/customize.sh'" \
  "$suite" "$work/rootfs" - < "$work/sources.list"

# --- kernel and initrd go next to the squashfs, not inside it ----------------
kver=$(basename "$(ls -d "$work"/rootfs/lib/modules/* | sort -V | tail -1)")
cp "$work/rootfs/boot/vmlinuz-$kver" "$work/iso/live/vmlinuz"
cp "$work/rootfs/boot/initrd.img-$kver" "$work/iso/live/initrd.img"
rm -f "$work"/rootfs/boot/vmlinuz* "$work"/rootfs/boot/initrd.img* "$work"/rootfs/vmlinuz* "$work"/rootfs/initrd.img*
say "kernel $kver"

say "squashfs ($comp)"
# SOURCE_DATE_EPOCH (exported) sets every timestamp in the squashfs.
compopts=(-comp xz -Xbcj x86 -b 1M)
[ "$comp" = zstd ] && compopts=(-comp zstd -Xcompression-level 19 -b 1M)
mksquashfs "$work/rootfs" "$work/iso/live/filesystem.squashfs" -noappend -quiet -no-progress \
  "${compopts[@]}" \
  -wildcards -e 'proc/*' 'sys/*' 'dev/*' 'run/*' 'tmp/*' 'var/tmp/*'

# --- boot loaders -------------------------------------------------------------
printf 'racklift live %s %s amd64 (%s)\n' "$version" "$suite" "$build_id" > "$work/iso/.disk/info"
printf '%s\n' "$build_id" > "$work/iso/.disk/racklift-live"
sed -e "s/@VERSION@/$version/g" -e "s/@BUILD_ID@/$build_id/g" "$here/grub/grub.cfg" > "$work/iso/boot/grub/grub.cfg"

# BIOS: a GRUB El Torito image with the modules built in; xorriso's
# --grub2-mbr makes the same image boot from a USB stick (MBR).
sed -e "s/@BUILD_ID@/$build_id/g" "$here/grub/early.cfg" > "$work/early.cfg"
grub-mkimage -O i386-pc-eltorito -p /boot/grub -c "$work/early.cfg" -o "$work/iso/boot/grub/bios.img" \
  biosdisk iso9660 part_msdos part_gpt fat ext2 search search_fs_file configfile normal linux \
  echo test true sleep ls cat serial terminal gzio halt reboot

# UEFI: Debian's Microsoft-signed shim and Debian-signed GRUB (Secure Boot
# works). The signed GRUB finds the ISO through /.disk/info and reads
# /boot/grub/grub.cfg. Fetched with apt-get download into the cache.
say "signed shim and GRUB"
efidebs="$cache/efi-debs"
mkdir -p "$efidebs"
for p in shim-signed shim-helpers-amd64-signed grub-efi-amd64-signed; do
  v=$(apt-cache policy "$p" | awk '/Candidate:/ { print $2 }')
  [ -n "$v" ] && [ "$v" != "(none)" ] || die "package $p not found: apt-get update?"
  if [ ! -f "$efidebs/${p}_${v//:/%3a}_amd64.deb" ]; then
    rm -f "$efidebs/${p}_"*.deb
    (cd "$efidebs" && apt-get download -q -o APT::Sandbox::User=root "$p=$v")
  fi
  dpkg-deb -x "$efidebs/${p}_${v//:/%3a}_amd64.deb" "$work/efi/pkgs"
done
shim="$work/efi/pkgs/usr/lib/shim/shimx64.efi.signed"
mm="$work/efi/pkgs/usr/lib/shim/mmx64.efi.signed"
grubefi="$work/efi/pkgs/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
for f in "$shim" "$mm" "$grubefi"; do [ -f "$f" ] || die "missing $f"; done
efiimg="$work/efi/efiboot.img"
rm -f "$efiimg"
# mcopy -m keeps each file's time: make them all SOURCE_DATE_EPOCH first.
find "$work/iso" "$work/efi" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkfs.vfat -C --invariant -i 52414b4c -n RACKLIFTEFI "$efiimg" 8192 >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$efiimg" ::/EFI ::/EFI/BOOT ::/EFI/debian
mcopy -m -i "$efiimg" "$shim" ::/EFI/BOOT/BOOTX64.EFI
mcopy -m -i "$efiimg" "$grubefi" ::/EFI/BOOT/grubx64.efi
mcopy -m -i "$efiimg" "$mm" ::/EFI/BOOT/mmx64.efi
# When GRUB cannot find /.disk/info it reads grub.cfg beside itself.
mcopy -m -i "$efiimg" "$work/iso/boot/grub/grub.cfg" ::/EFI/BOOT/grub.cfg
find "$work/iso" "$work/efi" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
touch -d "@$SOURCE_DATE_EPOCH" "$efiimg"

# --- the hybrid ISO -------------------------------------------------------------
# MBR only (no GPT): partition 1 is the ISO, partition 2 the EFI system
# partition, so a RACKLIFT-DATA partition can be appended after them.
say "xorriso"
rm -f "$out"
xorriso -report_about WARNING -as mkisofs \
  -iso-level 3 -full-iso9660-filenames -joliet -joliet-long -rational-rock \
  -volid "RACKLIFT_LIVE" -appid "racklift live $version" -publisher "racklift" \
  -o "$out" \
  --grub2-mbr /usr/lib/grub/i386-pc/boot_hybrid.img \
  -partition_offset 16 --mbr-force-bootable \
  -b boot/grub/bios.img -no-emul-boot -boot-load-size 4 -boot-info-table --grub2-boot-info \
  -c boot/grub/boot.cat \
  -eltorito-alt-boot -e --interval:appended_partition_2:all:: -no-emul-boot \
  -append_partition 2 0xef "$efiimg" \
  "$work/iso"

end=$(date +%s)
size=$(stat -c %s "$out")
say "built $out: $((size / 1024 / 1024)) MiB ($size bytes) in $((end - start)) s"
say "  squashfs $(( $(stat -c %s "$work/iso/live/filesystem.squashfs") / 1024 / 1024 )) MiB, initrd $(( $(stat -c %s "$work/iso/live/initrd.img") / 1024 / 1024 )) MiB, kernel $kver"
sha256sum "$out" | sed 's/^/[live] sha256 /'

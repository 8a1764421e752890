# Runs inside the Debian 12 image's root file system (mmdebstrap customize
# hook, bash -euo pipefail), after the overlay (hack/image/debian12/rootfs)
# was copied in. Environment: ROOT_UUID (ext4 root), ESP_UUID (the EFI
# system partition's FAT volume id, XXXX-XXXX).
: "${ROOT_UUID:?}" "${ESP_UUID:?}"

cmdline="root=UUID=$ROOT_UUID ro console=tty0 console=ttyS0,115200n8"

# --- file systems ---------------------------------------------------------------
mkdir -p /boot/efi
printf '%s\n' \
  "# racklift Debian 12 image: <file system> <mount point> <type> <options> <dump> <pass>" \
  "UUID=$ROOT_UUID / ext4 errors=remount-ro 0 1" \
  "UUID=$ESP_UUID /boot/efi vfat umask=0077,nofail 0 2" > /etc/fstab

# --- identity: made at first boot, never shipped ----------------------------------
echo debian > /etc/hostname
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n' > /etc/hosts
# Empty (not missing): systemd makes a new machine-id at first boot.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
rm -f /etc/ssh/ssh_host_*
# No password anywhere and no user: cloud-init adds what the plan says.
passwd -l root >/dev/null
rm -rf /var/lib/cloud

# --- GRUB ---------------------------------------------------------------------------
# One /boot/grub/grub.cfg for both firmwares. BIOS: core.img (below) finds
# the root file system by UUID and reads it. UEFI: Debian's signed GRUB has
# the prefix /EFI/debian built in and reads \EFI\debian\grub.cfg on the ESP
# (its embedded memdisk config tries $prefix/x86_64-efi/grub.cfg, then
# $prefix/grub.cfg, then grub.cfg beside itself), which chains to this file.
# update-grub on the installed node replaces it with the same settings
# (/etc/default/grub.d/racklift.cfg).
mkdir -p /boot/grub
printf '%s\n' \
  "# racklift Debian 12 image. update-grub replaces this file; settings in /etc/default/grub.d/." \
  "set default=0" \
  "set timeout=1" \
  "serial --unit=0 --speed=115200" \
  "terminal_input console serial" \
  "terminal_output console serial" \
  "insmod part_gpt" \
  "insmod ext2" \
  "search --no-floppy --fs-uuid --set=root $ROOT_UUID" \
  "menuentry 'Debian GNU/Linux 12' {" \
  "	linux /vmlinuz $cmdline" \
  "	initrd /initrd.img" \
  "}" > /boot/grub/grub.cfg
[ -e /vmlinuz ] && [ -e /initrd.img ] || { echo "customize: /vmlinuz or /initrd.img missing" >&2; exit 1; }

# BIOS: the modules where grub-install puts them, and core.img (embedded
# into the BIOS boot partition by build-debian12.sh) with a config that
# finds the root file system by UUID, whatever BIOS disk number it gets.
mkdir -p /boot/grub/i386-pc
cp /usr/lib/grub/i386-pc/*.mod /usr/lib/grub/i386-pc/*.lst /boot/grub/i386-pc/
printf 'search --no-floppy --fs-uuid --set=root %s\nset prefix=($root)/boot/grub\n' "$ROOT_UUID" > /tmp/racklift-early.cfg
grub-mkimage -O i386-pc -d /usr/lib/grub/i386-pc -p /boot/grub -c /tmp/racklift-early.cfg \
  -o /boot/grub/i386-pc/core.img biosdisk part_gpt ext2 search search_fs_uuid
rm -f /tmp/racklift-early.cfg
cp /usr/lib/grub/i386-pc/boot.img /boot/grub/i386-pc/boot.img

# UEFI: the ESP's files, gathered here; build-debian12.sh copies them in.
esp=/usr/local/lib/racklift-esp
rm -rf "$esp"
mkdir -p "$esp/EFI/debian" "$esp/EFI/BOOT"
for d in debian BOOT; do
  cp /usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed "$esp/EFI/$d/grubx64.efi"
  cp /usr/lib/shim/mmx64.efi.signed "$esp/EFI/$d/mmx64.efi"
done
cp /usr/lib/shim/shimx64.efi.signed "$esp/EFI/debian/shimx64.efi"
cp /usr/lib/shim/shimx64.efi.signed "$esp/EFI/BOOT/BOOTX64.EFI"
[ -f /usr/lib/shim/BOOTX64.CSV ] && cp /usr/lib/shim/BOOTX64.CSV "$esp/EFI/debian/BOOTX64.CSV"
printf 'search --no-floppy --fs-uuid --set=root %s\nset prefix=($root)/boot/grub\nconfigfile $prefix/grub.cfg\n' "$ROOT_UUID" > "$esp/EFI/debian/grub.cfg"
# No fbx64.efi: from the fallback path shim goes straight to grubx64.efi
# (the deploy agent adds the boot entry for \EFI\debian\shimx64.efi).

# --- services -----------------------------------------------------------------------
systemctl enable networking.service chrony.service ssh.service >/dev/null 2>&1 || true
systemctl set-default multi-user.target >/dev/null
# The installed node is managed by the plan, not by timers that reach out.
systemctl mask apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true

# --- smaller and the same every build -----------------------------------------------
# Python's byte code stays: cloud-init would compile it at every first boot.
find /usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
find /usr/share/doc -mindepth 1 -type d -empty -delete
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/lintian/* /usr/share/linda/*
find /usr/share/locale -name '*.mo' -delete
find /usr/share/locale -mindepth 1 -type d -empty -delete
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old
rm -f /var/log/*.log /var/log/apt/* /var/cache/ldconfig/aux-cache 2>/dev/null || true
find /var/log -type f -exec truncate -s 0 {} +

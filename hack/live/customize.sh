# Runs inside the live root file system (mmdebstrap customize hook, bash -eu).
# The overlay (hack/live/rootfs) has been copied in already.

echo racklift > /etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\tracklift\n::1\tlocalhost ip6-localhost ip6-loopback\n' > /etc/hosts

# Consoles log in as root automatically (see getty overrides); no password
# login anywhere else. Physical access to the console is the trust boundary,
# as with any live system; the dashboard needs the admin token.
passwd -l root >/dev/null

systemctl enable systemd-networkd.service racklift-setup.service racklift.service racklift-console.service
systemctl enable lldpd.service 2>/dev/null || true
# No internet: nothing to update, nothing to resolve upstream.
systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer 2>/dev/null || true
systemctl set-default multi-user.target

mkdir -p /var/lib/racklift /etc/racklift/iso
chmod 0700 /var/lib/racklift

# Offline appliance: no docs (the copyright files stay), man pages or
# translations.
find /usr/share/doc -mindepth 1 ! -type d ! -name copyright ! -path '/usr/share/doc/racklift/*' -delete
find /usr/share/doc -mindepth 1 -type d -empty -delete
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/lintian/* /usr/share/linda/*
find /usr/share/locale -name '*.mo' -delete
find /usr/share/locale -mindepth 1 -type d -empty -delete

# Live systems get a fresh machine-id on every boot.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
# Build-time leftovers that differ between builds.
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old
rm -f /var/log/*.log /var/log/apt/* /var/cache/ldconfig/aux-cache /etc/ssh/ssh_host_* 2>/dev/null || true
find /var/log -type f -exec truncate -s 0 {} +

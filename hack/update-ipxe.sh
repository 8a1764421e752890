#!/usr/bin/env bash
# update-ipxe.sh refreshes the iPXE binaries that boot/ipxe embeds from the
# Debian "ipxe" package installed on this machine, rewrites
# boot/ipxe/bin/COPYING (licence texts) and boot/ipxe/bin/SOURCE.md
# (package version, where the corresponding source is, sha256 sums).
#
# Usage: hack/update-ipxe.sh            (needs: apt-get install ipxe)
#
# The binaries are committed so that `go build` works on a fresh clone
# offline; run this script, then `go test ./boot/ipxe/` and commit the
# result. It never touches anything outside boot/ipxe/bin/.
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
dest="$repo/boot/ipxe/bin"
src=/usr/lib/ipxe
doc=/usr/share/doc/ipxe/copyright

# The binaries boot/ipxe embeds. Keep in sync with the go:embed line and the
# Bootfile table in boot/ipxe/ipxe.go.
files=(undionly.kpxe ipxe.efi snponly.efi)

die() { echo "update-ipxe: $*" >&2; exit 1; }

version=$(dpkg-query -W -f='${Version}' ipxe 2>/dev/null) ||
	die "Debian package ipxe is not installed (apt-get install ipxe)"
status=$(dpkg-query -W -f='${Status}' ipxe)
[[ $status == "install ok installed" ]] || die "package ipxe is in state '$status'"
arch=$(dpkg-query -W -f='${Architecture}' ipxe)
[[ -r $doc ]] || die "$doc missing"
[[ -r /usr/share/common-licenses/GPL-2 ]] || die "/usr/share/common-licenses/GPL-2 missing (base-files)"

mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT

for f in "${files[@]}"; do
	# ipxe.efi is a symlink to /boot/ipxe.efi in Debian's package: copy the target.
	[[ -s $src/$f ]] || die "$src/$f missing or empty"
	cp -L -- "$src/$f" "$tmp/$f"
	chmod 0644 "$tmp/$f"
done

# An arm64 EFI build is not part of Debian's ipxe package (Architecture: all,
# x86 builds only, as of bookworm). Report it if a later package ships one.
arm64=$(dpkg -L ipxe | grep -Ei 'arm64|aarch64' || true)
if [[ -n $arm64 ]]; then
	echo "update-ipxe: note: package ships arm64 files, consider embedding them:" >&2
	echo "$arm64" >&2
fi

upstream_commit=""
if [[ $version =~ git-[0-9]+\.([0-9a-f]+) ]]; then
	upstream_commit=${BASH_REMATCH[1]}
fi

{
	cat <<EOF
The iPXE binaries in this directory (${files[*]}) were copied unmodified
from the Debian package "ipxe" version $version. iPXE is free software;
most of it is licensed under the GNU General Public License version 2 or
later, some files under GPL-2 only, LGPL-2+, LGPL-2.1+ or BSD licences, as
listed file by file in Debian's copyright file below. Where the corresponding
source is: see SOURCE.md in this directory.

The full texts of the GPL-2, LGPL-2 and LGPL-2.1 follow Debian's copyright
file (Debian's file refers to them in /usr/share/common-licenses/).

========================================================================
/usr/share/doc/ipxe/copyright (Debian package ipxe $version)
========================================================================

EOF
	cat "$doc"
	for l in GPL-2 LGPL-2 LGPL-2.1; do
		[[ -r /usr/share/common-licenses/$l ]] || continue
		printf '\n========================================================================\n'
		printf '%s (from /usr/share/common-licenses/%s)\n' "$l" "$l"
		printf '========================================================================\n\n'
		cat "/usr/share/common-licenses/$l"
	done
} >"$tmp/COPYING"

{
	cat <<EOF
# iPXE binaries: origin and source

These files are copied unmodified from the Debian package **ipxe**,
version **$version** (Architecture: $arch), by \`hack/update-ipxe.sh\`.
Do not edit them by hand; run the script on a Debian machine with the
package installed and commit the result.

| file | copied from |
|------|-------------|
EOF
	for f in "${files[@]}"; do
		printf '| %s | %s |\n' "$f" "$(readlink -f "$src/$f")"
	done
	cat <<EOF

## Corresponding source

- Debian source package \`ipxe\`, version \`$version\`:
  \`apt-get source ipxe=$version\` (needs a deb-src line), or
  <https://snapshot.debian.org/package/ipxe/$version/>
  and <https://sources.debian.org/src/ipxe/$version/>.
- Upstream: iPXE git, <https://github.com/ipxe/ipxe> (also
  <https://git.ipxe.org/ipxe.git>)${upstream_commit:+, commit \`$upstream_commit\`}; project site <https://ipxe.org/>.
  Debian's patches and build rules are in the source package's \`debian/\` directory.

## Licence

iPXE is GPL-2+ (with some GPL-2-only, LGPL and BSD files); see COPYING in
this directory. racklift does not modify these binaries.

## arm64

Debian's ipxe package ships no arm64 EFI binary, so boot/ipxe has none
(\`Bootfile(EFIARM64)\` reports false).

## sha256

\`\`\`
EOF
	(cd "$tmp" && sha256sum -- "${files[@]}")
	echo '```'
} >"$tmp/SOURCE.md"

for f in "${files[@]}" COPYING SOURCE.md; do
	install -m 0644 -- "$tmp/$f" "$dest/$f"
done
echo "update-ipxe: boot/ipxe/bin refreshed from ipxe $version"
(cd "$dest" && sha256sum -- "${files[@]}")

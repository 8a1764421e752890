#!/usr/bin/env bash
# Builds racklift's deploy agent directory (default out/agent): Debian's
# signed kernel, the base initramfs (busybox, kernel modules, efibootmgr,
# /init), Debian's signed shim and netboot GRUB, and bundle.json.
# Packages come from this machine's apt configuration (`apt-get
# download`, cached in hack/.cache/agent) and are unpacked with dpkg-deb;
# nothing is installed and the host's /boot is not read. The work is done
# by hack/agent (Go) with provision/agent/initramfs, the code the test
# bed's payload uses too.
#
#   hack/agent/build.sh [OUT_DIR]     (or AGENT_OUT=..., AGENT_CACHE=...)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-${AGENT_OUT:-$repo/out/agent}}
cache=${AGENT_CACHE:-$repo/hack/.cache/agent}
export PATH=/usr/local/go/bin:$PATH

for tool in apt-get apt-cache dpkg-deb go; do
  command -v "$tool" >/dev/null || { echo "agent: $tool is missing" >&2; exit 1; }
done
mkdir -p "$cache"
cd "$repo"
CGO_ENABLED=0 go run ./hack/agent/mkagent -out "$out" -cache "$cache"

#!/usr/bin/env bash
# Runs racklift side by side with Kea, dnsmasq, tftpd-hpa and nginx (see
# hack/bench/RESULTS.md). Needs root: it installs missing peers (without
# starting their services), creates two network namespaces rl-bn-s-PID and
# rl-bn-c-PID joined by a veth pair (10.253.0.0/16), and removes them again.
# Extra arguments go to the Go program, e.g.:
#   hack/bench/run.sh -runs 5 -only dhcp,tftp -out /tmp/bench.md
#   hack/bench/run.sh -only dhcp-profile,tftp-profile -profile /tmp/prof
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"
if [ "$(id -u)" -ne 0 ]; then
  echo "bench: needs root (network namespaces, ports 67 and 69, apt-get)" >&2
  exit 1
fi
hack/bench/install-peers.sh
# Build once, then run the binary: the program re-executes itself inside the
# client namespace for the load generators.
bin="$(mktemp -d /tmp/rl-bn-bin.XXXXXX)"
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/bench" ./hack/bench
# Bounded: the whole run has 60 minutes.
timeout --signal=TERM --kill-after=30s 60m "$bin/bench" "$@"

#!/usr/bin/env bash
# Boots the live image in QEMU (TCG) and checks racklift over a forwarded
# port (make test-live). Not part of make test: the image build (5-8 min)
# and four boots under TCG (1-2 min each) take 10-15 minutes on 2 cores,
# too slow for CI's 90 minutes next to the rest of the suite.
#
# Cases (one QEMU at a time, each bounded to 6 minutes):
#   bios-stick  BIOS (SeaBIOS), the ISO written to a "USB stick" image with a
#               FAT32 data partition (label RACKLIFT) appended after it (the README's
#               recipe), holding plan.yaml, secrets.yaml and racklift.env
#   uefi-disk   UEFI (OVMF), the ISO as a USB stick plus a separate ext4 data
#               disk labelled RACKLIFT-DATA with the plan
#   uefi-safe   UEFI, no data at all: safe mode (dashboard, DHCP off)
#   secureboot-disk  as uefi-disk with Secure Boot enforced (OVMF with
#               Microsoft keys: Debian's shim, signed GRUB, signed kernel)
# Each asserts /healthz over hostfwd (plan "lab", 3 nodes, or safe_mode) and
# the banner with the admin token on the serial console.
#
# Environment: LIVE_ISO (default out/racklift-live.iso), LIVE_CASES (default
# "bios-stick uefi-disk secureboot-disk uefi-safe"), LIVE_TIMEOUT (seconds, default 360),
# LIVE_TEST_DIR (kept logs; default a new /tmp/racklift-live-test.XXXX).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
iso="${LIVE_ISO:-$repo/out/racklift-live.iso}"
cases="${LIVE_CASES:-bios-stick uefi-disk secureboot-disk uefi-safe}"
limit="${LIVE_TIMEOUT:-360}"
bin="$repo/bin/racklift"

[ -f "$iso" ] || { echo "test-live: $iso missing: make live-image" >&2; exit 1; }
[ -x "$bin" ] || { echo "test-live: $bin missing: make build" >&2; exit 1; }
for t in qemu-system-x86_64 mkfs.vfat mcopy mkfs.ext4 sfdisk openssl curl xorriso; do
  command -v "$t" >/dev/null || { echo "test-live: $t missing (apt-get install qemu-system-x86 ovmf dosfstools mtools e2fsprogs fdisk openssl curl xorriso)" >&2; exit 1; }
done
code=/usr/share/OVMF/OVMF_CODE_4M.fd
vars=/usr/share/OVMF/OVMF_VARS_4M.fd
[ -f "$code" ] && [ -f "$vars" ] || { echo "test-live: OVMF missing: apt-get install ovmf" >&2; exit 1; }

dir="${LIVE_TEST_DIR:-$(mktemp -d /tmp/racklift-live-test.XXXXXX)}"
mkdir -p "$dir"
qpid=""
cleanup() {
  if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
    kill "$qpid" 2>/dev/null || true
    sleep 1
    kill -9 "$qpid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[test-live %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# --- the data: racklift plan example lab + a 0600 secrets file --------------
data="$dir/data/racklift"
mkdir -p "$data/iso"
"$bin" plan example lab > "$data/plan.yaml"
hash=$(openssl passwd -6 -salt racklifttest 'test-root-password')
umask 077
printf 'root-hash: "%s"\nbmc-lab: test-bmc-password\n' "$hash" > "$data/secrets.yaml"
umask 022
chmod 0600 "$data/secrets.yaml"
# For the stick: a static provisioning address (not QEMU's DHCP 10.0.2.15),
# so the test proves racklift.env is read; CRLF on purpose (Windows editors).
printf 'RACKLIFT_ADDRESS=10.0.2.20/24\r\nRACKLIFT_GATEWAY=10.0.2.2\r\nRACKLIFT_DHCP_MODE=proxy\r\n' > "$dir/static.env"
# A tiny ISO stands in for an OS DVD: racklift serves it as media "rocky9".
mkdir -p "$dir/media/BaseOS"
echo "racklift live test media" > "$dir/media/BaseOS/README"
xorriso -as mkisofs -quiet -V RL_TEST -R -J -o "$data/iso/rocky9.iso" "$dir/media" 2>/dev/null
"$bin" plan validate "$data/plan.yaml" --secrets "$data/secrets.yaml" >/dev/null 2>&1 ||
  { echo "test-live: the test plan does not validate" >&2; exit 1; }

free_port() {
  local p
  for p in $(seq 18081 18181); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  return 1
}

# boot NAME FIRMWARE EXPECT QEMU-DRIVE-ARGS...: boots, waits for /healthz,
# checks it and the serial banner, stops QEMU by PID.
results=()
failed=0
last_token=""
boot() {
  local name=$1 fw=$2 expect=$3 guest=${GUEST_IP:-}
  last_token=""
  shift 3
  local port serial="$dir/$name.serial.log" fwargs=() t0 now body="" ok=0
  port=$(free_port)
  if [ "$fw" = uefi ]; then
    cp "$vars" "$dir/$name.vars.fd"
    fwargs=(-machine q35 -drive "if=pflash,format=raw,unit=0,readonly=on,file=$code"
      -drive "if=pflash,format=raw,unit=1,file=$dir/$name.vars.fd")
  elif [ "$fw" = secureboot ]; then
    # Microsoft keys enrolled, Secure Boot on: shim -> signed GRUB -> signed kernel.
    cp "${vars%_4M.fd}_4M.ms.fd" "$dir/$name.vars.fd"
    fwargs=(-machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on
      -drive "if=pflash,format=raw,unit=0,readonly=on,file=${code%_4M.fd}_4M.ms.fd"
      -drive "if=pflash,format=raw,unit=1,file=$dir/$name.vars.fd")
  else
    fwargs=(-machine pc)
  fi
  log "$name: booting ($fw), dashboard forwarded to 127.0.0.1:$port"
  t0=$(date +%s)
  qemu-system-x86_64 -accel tcg -m 2048 -smp 2 -no-reboot \
    "${fwargs[@]}" \
    -device qemu-xhci,id=xhci \
    "$@" \
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-$guest:8081" -device e1000,netdev=n0 \
    -display none -monitor none -chardev "file,id=ser0,path=$serial" -serial chardev:ser0 \
    > "$dir/$name.qemu.log" 2>&1 &
  qpid=$!
  while :; do
    now=$(date +%s)
    if [ $((now - t0)) -ge "$limit" ]; then
      log "$name: no answer from /healthz within $limit s"
      break
    fi
    if ! kill -0 "$qpid" 2>/dev/null; then
      log "$name: QEMU exited early"
      break
    fi
    body=$(curl -fsS -m 5 "http://127.0.0.1:$port/healthz" 2>/dev/null || true)
    if [ -n "$body" ]; then
      ok=1
      break
    fi
    sleep 3
  done
  local took=$(( $(date +%s) - t0 ))
  local verdict=FAIL why=""
  if [ "$ok" = 1 ]; then
    log "$name: /healthz after $took s: $body"
    case $expect in
    plan) printf '%s' "$body" | grep -q '"plan":"lab"' && printf '%s' "$body" | grep -q '"nodes":3' &&
      printf '%s' "$body" | grep -q '"safe_mode":false' && verdict=PASS || why="want plan lab, 3 nodes, not safe mode" ;;
    safe) printf '%s' "$body" | grep -q '"safe_mode":true' && verdict=PASS || why="want safe_mode true" ;;
    esac
    if [ "$verdict" = PASS ]; then
      # The console banner (written after /healthz answers) with the token.
      local i
      for i in $(seq 1 40); do
        grep -q 'admin token: [A-Za-z0-9_-]\{20,\}' "$serial" 2>/dev/null && break
        sleep 3
      done
      if ! grep -q 'admin token: [A-Za-z0-9_-]\{20,\}' "$serial"; then
        verdict=FAIL
        why="no admin token banner on the serial console"
      elif [ "$expect" = plan ] && ! grep -q 'serving plan "lab" (3 nodes)' "$serial"; then
        verdict=FAIL
        why="the banner does not say the plan is served"
      elif [ "$expect" = plan ] && ! grep -q 'media: rocky9=/run/racklift-data/racklift/iso/rocky9.iso' "$serial"; then
        verdict=FAIL
        why="the banner does not list the media rocky9"
      elif [ -n "$guest" ] && ! grep -q "dashboard: http://$guest:8081/" "$serial"; then
        verdict=FAIL
        why="the banner does not show the static address $guest"
      elif [ "$expect" = safe ] && ! grep -q 'SAFE MODE' "$serial"; then
        verdict=FAIL
        why="the banner does not say SAFE MODE"
      fi
      # The dashboard itself needs the token: without it the API says 401.
      if [ "$verdict" = PASS ]; then
        local st
        st=$(curl -s -o /dev/null -w '%{http_code}' -m 5 "http://127.0.0.1:$port/api/v1/cluster" || true)
        [ "$st" = 401 ] || { verdict=FAIL; why="admin API without token answered $st, want 401"; }
        local tok
        tok=$(grep -a -o 'admin token: [A-Za-z0-9_-]\{20,\}' "$serial" | tail -n 1 | cut -d' ' -f3)
        st=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/api/v1/cluster" || true)
        [ "$st" = 200 ] || { verdict=FAIL; why="admin API with the console's token answered $st, want 200"; }
        last_token=$tok
      fi
    fi
  else
    why="no /healthz"
  fi
  cleanup
  qpid=""
  log "$name: $verdict${why:+ ($why)} (serial log: $serial)"
  [ "$verdict" = PASS ] || { failed=$((failed + 1)); tail -n 40 "$serial" | sed 's/^/    | /' || true; }
  results+=("$name: $verdict, boot to /healthz $took s${why:+ ($why)}")
}

# persisted NAME TOKEN-ON-DISK: the admin token shown on the console must be
# the one in racklift/state on the data partition (the state survives a reboot).
persisted() {
  local got
  got=$(printf '%s' "$2" | tr -d '\r\n')
  if [ -n "$last_token" ] && [ "$got" = "$last_token" ]; then
    results+=("$1: PASS, state (admin-token) is on the data partition")
  else
    results+=("$1: FAIL, racklift/state/admin-token on the data partition is '$got', the console showed '$last_token'")
    failed=$((failed + 1))
  fi
}

stick_drive() { # the image as a USB mass-storage device on the xHCI bus
  echo "-drive" "if=none,id=stick,format=raw,file=$1$2" "-device" "usb-storage,bus=xhci.0,drive=stick,bootindex=0"
}

for c in $cases; do
  case $c in
  bios-stick)
    # dd the ISO to a 1 GiB "stick", append a FAT32 partition, fill it.
    img="$dir/stick.img"
    cp --sparse=always "$iso" "$img"
    truncate -s 1G "$img"
    echo 'type=c' | sfdisk --quiet --append "$img" >/dev/null
    start=$(sfdisk -J "$img" | awk -F'[:,]' '/"start"/ { s = $2 } END { gsub(/ /, "", s); print s }')
    size=$(sfdisk -J "$img" | awk -F'[:,]' '/"size"/ { s = $2 } END { gsub(/ /, "", s); print s }')
    mkfs.vfat -F 32 -n RACKLIFT --offset "$start" "$img" $((size / 2)) >/dev/null
    export MTOOLS_SKIP_CHECK=1
    mcopy -s -i "$img@@$((start * 512))" "$dir/data/racklift" ::/
    mcopy -i "$img@@$((start * 512))" "$dir/static.env" ::/racklift/racklift.env
    # shellcheck disable=SC2046
    GUEST_IP=10.0.2.20 boot bios-stick bios plan $(stick_drive "$img" "")
    persisted bios-stick-state "$(mtype -i "$img@@$((start * 512))" ::/racklift/state/admin-token 2>/dev/null)"
    ;;
  uefi-disk | secureboot-disk)
    dimg="$dir/$c-data-ext4.img"
    rm -f "$dimg"
    mkfs.ext4 -q -L RACKLIFT-DATA -d "$dir/data" -E root_owner=0:0 "$dimg" 64M
    # shellcheck disable=SC2046
    boot "$c" "${c%-disk}" plan $(stick_drive "$iso" ",readonly=on") \
      -drive "if=none,id=data,format=raw,file=$dimg" -device virtio-blk-pci,drive=data
    # QEMU was stopped like a power cut: replay the ext4 journal first.
    e2fsck -fy "$dimg" >/dev/null 2>&1 || true
    persisted "$c-state" "$(debugfs -R 'cat /racklift/state/admin-token' "$dimg" 2>/dev/null)"
    ;;
  uefi-safe | bios-safe)
    last_token=""
    fw=${c%-safe}
    # shellcheck disable=SC2046
    boot "$c" "$fw" safe $(stick_drive "$iso" ",readonly=on")
    ;;
  *)
    echo "test-live: unknown case $c" >&2
    exit 2
    ;;
  esac
done

echo
echo "live image: $iso ($(( $(stat -c %s "$iso") / 1024 / 1024 )) MiB)"
for r in "${results[@]}"; do echo "  $r"; done
total=${#results[@]}
echo "$((total - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]

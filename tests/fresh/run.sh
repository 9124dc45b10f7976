#!/usr/bin/env bash
# The README's two commands on a pristine Debian 12 machine (as root):
#
#   bash tests/fresh/run.sh [COMMIT]        (COMMIT: default HEAD of this repository)
#
# The "fresh Debian 12 machine with Rust installed" is a chroot:
#   - mmdebstrap --variant=apt bookworm (Essential packages + apt) with the sources of a Debian 12
#     install (bookworm, bookworm-updates, bookworm-security, main), plus exactly
#     ca-certificates git (to clone the repository) and gcc libc6-dev (the C linker rustup's
#     toolchain needs: part of "Rust installed"); nothing else. Cached under
#     $LAB_FRESH_CACHE (default /var/cache/lab-fresh) by a hash of that definition; each run
#     works on an overlayfs over the cached root, in a work dir under /var/tmp.
#   - /usr/sbin/policy-rc.d denies service starts: a package's postinst must not start a
#     daemon (libvirtd, sshd) in the host's network namespace from inside the chroot.
#   - the host's Rust toolchain: RUSTUP_HOME and CARGO_HOME/bin bind-mounted read-only at the
#     same paths, CARGO_HOME/registry copied in (crates are not downloaded again).
#   - /dev and /sys rbind-mounted (rslave: unmounting never reaches the host's), a new /proc,
#     a tmpfs /run (libvirt's sockets, netns names and pid files stay in the chroot), the host's
#     /etc/resolv.conf (apt) and CA bundle (pip through this workplace's proxy), a clean
#     `git clone` of this repository at COMMIT in /root/lab.
# Then, in the chroot (as root, env -i, CI=true, stdin /dev/null, output piped: no TTY), each a
# timed phase printing `PHASE <name> <seconds>`:
#   ci-run   README command 2: bash .ci/run              (holds /tmp/lab-libvirt.lock)
#   lab-up   README command 1: bash scripts/lab-up.sh    (holds the lock until lab-down ends)
#   lab-down lab down, libvirt holds nothing of the lab, the private libvirtd stopped by the
#            PIDs lab-up.sh recorded (tests/e2e/libvirtd.sh stop lab /run/lab), netns gone
# The lock is taken for the whole ci-run phase (.ci/run starts its libvirtd only at its end):
# on a busy machine the phase waits for it first, and says so.
# FRESH_PHASES (default "host-packages chroot-libvirt ci-run lab-up": README command 2 after its
# packages are in and libvirt is told it runs in a chroot, then README command 1) picks
# phases; also `true` (a trivial command),
# `host-packages` (bash scripts/host-packages.sh), `build` (cargo build --locked), `ci-no-e2e`
# (.ci/run up to its end-to-end part: starts no libvirtd, takes no lock).
# On exit (also on failure or Ctrl-C) everything is removed: processes running in the chroot
# (by PID), loop devices backed by files in it, every mount under the work dir (netns names
# included), the work dir. The output of the chroot is also appended to $FRESH_LOG (default
# /var/tmp/lab-fresh-<time>.log), kept. Closing line: `fresh: N passed, N failed`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "run as root (chroot, mounts, libvirtd)" >&2; exit 2; }
commit=$(git -C "$repo" rev-parse --verify "${1:-HEAD}^{commit}")
cache=${LAB_FRESH_CACHE:-/var/cache/lab-fresh}
phases=${FRESH_PHASES:-host-packages chroot-libvirt ci-run lab-up}
log=${FRESH_LOG:-/var/tmp/lab-fresh-$(date -u +%Y%m%dT%H%M%S)-$$.log}
lock=/tmp/lab-libvirt.lock

suite=bookworm
variant=apt
base_packages=(ca-certificates git gcc libc6-dev)
sources=(
  "deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main"
)

for tool in mmdebstrap flock chroot git losetup; do
  command -v "$tool" >/dev/null || { echo "$tool is missing on this host" >&2; exit 2; }
done
rustup_home=$(rustup show home)
cargo_bin=$(dirname "$(readlink -f "$(command -v cargo)")")   # rustup's proxy: CARGO_HOME/bin
cargo_home=${CARGO_HOME:-$(dirname "$cargo_bin")}
if [ ! -d "$rustup_home/toolchains" ] || [ ! -d "$cargo_home/bin" ]; then
  echo "no rustup toolchain found (RUSTUP_HOME=$rustup_home CARGO_HOME=$cargo_home)" >&2
  exit 2
fi

passed=0
failed=0
work=
root=
current=
holding_lock=false

say() { printf '== fresh: %s\n' "$*" | tee -a "$log" >&2; }

phase() { # phase NAME CMD...: runs CMD, prints PHASE NAME SECONDS, counts it
  local name=$1 start ms status=0
  shift
  say "$name: $*"
  current=$name
  start=$(date +%s%N)
  "$@" || status=$?
  current=
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf 'PHASE %s %d.%03d\n' "$name" $((ms / 1000)) $((ms % 1000)) | tee -a "$log"
  if [ "$status" -eq 0 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAILED $name (exit status $status; output in $log)" | tee -a "$log"
  fi
  return "$status"
}

in_root() { # in_root SCRIPT: SCRIPT by bash in the chroot, in /root/lab, no TTY, CI=true
  env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8 CI=true \
    PATH="$cargo_home/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    RUSTUP_HOME="$rustup_home" CARGO_HOME="$cargo_home" \
    chroot "$root" /bin/bash -c "cd /root/lab && $1" </dev/null 2>&1 | tee -a "$log"
  return "${PIPESTATUS[0]}"
}

take_lock() {
  exec 9>"$lock"
  if ! flock -n 9; then
    say "waiting for $lock (another real libvirtd runs on this machine)"
    flock 9 || { exec 9>&-; return 1; }
  fi
  holding_lock=true
}
drop_lock() { flock -u 9; exec 9>&-; holding_lock=false; }

# --- the pristine root, cached by its definition -----------------------------------------
make_base() {
  local key tmp
  key=$(printf '%s\n' "$suite" "$variant" "${base_packages[*]}" "${sources[@]}" | sha256sum | cut -c1-16)
  base=$cache/root-$key
  mkdir -p "$cache"
  exec 8>"$cache/.lock"
  flock 8
  if [ -f "$base/.complete" ]; then
    say "reusing pristine root $base"
  else
    tmp=$cache/.root-$key.tmp-$$
    rm -rf "$tmp"
    if ! mmdebstrap --variant="$variant" --include="$(IFS=,; echo "${base_packages[*]}")" \
        "$suite" "$tmp" "${sources[@]}" 2>&1 | tee -a "$log"; then
      rm -rf --one-file-system "$tmp"
      return 1
    fi
    touch "$tmp/.complete"
    rm -rf --one-file-system "$base"
    mv "$tmp" "$base"
  fi
  flock -u 8
  exec 8>&-
}

# --- the work copy and its mounts ----------------------------------------------------------
setup() {
  work=$(mktemp -d /var/tmp/lab-fresh.XXXXXX)
  root=$work/root
  mkdir -p "$work/upper" "$work/ovl" "$root"
  mount -t overlay overlay -o "lowerdir=$base,upperdir=$work/upper,workdir=$work/ovl" "$root"
  mount --make-private "$root"
  rm -f "$root/.complete"
  mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
  mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
  mount -t proc proc "$root/proc"
  mount -t tmpfs -o mode=0755 tmpfs "$root/run"
  for d in "$rustup_home" "$cargo_home/bin"; do
    mkdir -p "$root$d"
    mount --bind "$d" "$root$d"
    mount -o remount,bind,ro "$root$d"
  done
  if [ -d "$cargo_home/registry" ]; then
    cp -a "$cargo_home/registry" "$root$cargo_home/registry"
  fi
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  # The machine's trust store, like its resolver: this workplace reaches PyPI through a proxy
  # whose CA the host trusts (tests/e2e/ansible.sh installs ansible-core with pip).
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  printf '#!/bin/sh\n# no daemon starts from a package inside this chroot\nexit 101\n' \
    >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  git clone --quiet --no-hardlinks "$repo" "$root/root/lab"
  git -C "$root/root/lab" cat-file -e "$commit^{commit}" 2>/dev/null ||
    git -C "$root/root/lab" fetch --quiet "$repo" "$commit"
  git -C "$root/root/lab" checkout --quiet --detach "$commit"
  say "root $root: $(cat "$root/etc/debian_version"), repository at $commit"
  if [ -n "$(git -C "$repo" status --porcelain)" ]; then
    say "note: $repo has uncommitted changes; they are not in the clone"
  fi
}

# --- the phases ------------------------------------------------------------------------------
run_true() { in_root 'uname -a; cat /etc/debian_version; cargo --version; rustc --version; cargo fmt --version; cargo clippy --version'; }
run_host_packages() { in_root 'bash scripts/host-packages.sh'; }
# The one thing a chroot needs that a machine does not: libvirt builds each guest's private
# /dev in a mount namespace, which fails inside a chroot (qemu: "Could not open
# '/dev/urandom'"); without namespaces QEMU uses the chroot's /dev. After host-packages.
run_chroot_libvirt() {
  in_root 'grep -q "^namespaces = \[\]" /etc/libvirt/qemu.conf || echo "namespaces = []" >>/etc/libvirt/qemu.conf'
}
run_build() { in_root 'cargo build --locked'; }
run_ci() { take_lock || return 1; local s=0; in_root 'bash .ci/run' || s=$?; drop_lock; return "$s"; }
# .ci/run up to its end-to-end part (from the line `say "end to end`): no libvirtd, no lock
run_ci_no_e2e() {
  # shellcheck disable=SC2016 # expanded in the chroot
  in_root 'grep -q "^say \"end to end" .ci/run && sed "/^say \"end to end/,\$d" .ci/run >.ci/run-no-e2e && bash .ci/run-no-e2e'
}
run_lab_up() { take_lock || return 1; in_root 'bash scripts/lab-up.sh'; }   # lock kept for lab-down
run_lab_down() {
  # shellcheck disable=SC2016 # expanded in the chroot
  in_root '
    set -u
    LAB_NETNS=lab timeout 600 target/release/lab down --lab openstack-debian12 || s=1
    left=$(virsh -c qemu:///system "list --all --name; net-list --all --name; pool-list --all --name" | grep -c "^lab-" || true)
    [ "$left" -eq 0 ] || { echo "libvirt still holds $left lab objects"; s=1; }
    pids=$(cat /run/lab/libvirtd.pid /run/lab/virtlogd.pid)
    tests/e2e/libvirtd.sh stop lab /run/lab || s=1
    for p in $pids; do kill -0 "$p" 2>/dev/null && { echo "daemon $p still runs"; s=1; }; done
    ip netns list | grep -q "^lab\b" && { echo "netns lab is still there"; s=1; }
    exit "${s:-0}"'
  local s=$?
  $holding_lock && drop_lock
  return "$s"
}

# --- leaving nothing behind ----------------------------------------------------------------------
rooted_pids() { # PIDs of processes whose root is in the chroot
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case $r in "$root"|"$root"/*) echo "${p#/proc/}" ;; esac
  done
}
mounts_under() { # mount points under DIR, deepest first
  awk -v d="$1" '{ m = $5; gsub(/\\040/, " ", m); if (m == d || index(m, d "/") == 1) print m }' \
    /proc/self/mountinfo | awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2-
}
cleanup() {
  local status=$? pids p m dev leftovers=0
  trap - EXIT INT TERM
  if [ -n "$current" ]; then
    failed=$((failed + 1))
    echo "FAILED $current (interrupted, exit status $status)" | tee -a "$log"
  fi
  if [ -n "$root" ] && [ -d "$root/run/lab" ] && ls "$root"/run/lab/*.pid >/dev/null 2>&1; then
    say "cleanup: lab down and the private libvirtd of lab-up.sh"
    in_root 'LAB_NETNS=lab timeout 300 target/release/lab down --lab openstack-debian12; tests/e2e/libvirtd.sh stop lab /run/lab' || true
  fi
  if [ -n "$root" ]; then
    pids=$(rooted_pids)
    if [ -n "$pids" ]; then
      say "cleanup: ending processes left in the chroot: $(tr '\n' ' ' <<<"$pids")"
      # shellcheck disable=SC2086 # a list of PIDs
      kill $pids 2>/dev/null || true
      for _ in $(seq 1 100); do [ -z "$(rooted_pids)" ] && break; sleep 0.1; done
      pids=$(rooted_pids)
      # shellcheck disable=SC2086 # a list of PIDs
      [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
      sleep 0.5
    fi
  fi
  if [ -n "$work" ]; then
    losetup -n -l -O NAME,BACK-FILE 2>/dev/null | while read -r dev back; do
      case $back in "$work"/*) say "cleanup: detaching $dev ($back)"; losetup -d "$dev" || true ;; esac
    done
    for m in $(mounts_under "$work"); do umount "$m" 2>/dev/null || umount -l "$m" || true; done
    if [ -n "$(mounts_under "$work")" ]; then
      echo "LEFTOVER mounts under $work: $(mounts_under "$work" | tr '\n' ' ')" | tee -a "$log"
      leftovers=1
    else
      rm -rf --one-file-system "$work"
    fi
    [ -z "$(rooted_pids)" ] || { echo "LEFTOVER processes: $(rooted_pids)" | tee -a "$log"; leftovers=1; }
    if losetup -n -l -O BACK-FILE 2>/dev/null | grep -qF "$work/"; then
      echo "LEFTOVER loop devices backed in $work" | tee -a "$log"; leftovers=1
    fi
    [ ! -e "$work" ] || { echo "LEFTOVER work dir $work" | tee -a "$log"; leftovers=1; }
  fi
  $holding_lock && drop_lock
  if [ "$leftovers" -ne 0 ]; then failed=$((failed + 1)); fi
  echo "log: $log"
  echo "fresh: $passed passed, $failed failed" | tee -a "$log"
  [ "$failed" -eq 0 ] && [ "$status" -eq 0 ] || exit 1
  exit 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "commit $commit, phases: $phases, log $log"
phase root make_base
phase setup setup
for p in $phases; do
  case $p in
    true) phase true run_true || true ;;
    host-packages) phase host-packages run_host_packages || true ;;
    chroot-libvirt) phase chroot-libvirt run_chroot_libvirt || true ;;
    build) phase build run_build || true ;;
    ci-run) phase ci-run run_ci || true ;;
    ci-no-e2e) phase ci-no-e2e run_ci_no_e2e || true ;;
    lab-up) phase lab-up run_lab_up || true; phase lab-down run_lab_down || true ;;
    *) echo "unknown phase $p (true host-packages chroot-libvirt build ci-no-e2e ci-run lab-up)" >&2; exit 2 ;;
  esac
done

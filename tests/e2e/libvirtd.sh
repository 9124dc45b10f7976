#!/usr/bin/env bash
# Starts or stops a private libvirtd (with its virtlogd) inside a network namespace, so every
# bridge, tap and packet of the test's guests stays in that namespace. Our hosts have no
# systemd: the daemons are started by hand and stopped by the PIDs this script recorded.
#
#   tests/e2e/libvirtd.sh start NS RUNDIR   # creates netns NS, starts the daemons
#   tests/e2e/libvirtd.sh stop  NS RUNDIR   # stops them by PID, deletes NS
#   tests/e2e/libvirtd.sh restart NS RUNDIR # stops them by PID, starts them again in NS
#                                           # (as a host reboot does: QEMU guests end with it)
#   tests/e2e/libvirtd.sh crash NS RUNDIR   # SIGKILL to libvirtd alone, as the OOM killer
#                                           # sends it: its guests and virtlogd run on
#   tests/e2e/libvirtd.sh revive NS RUNDIR  # starts libvirtd again after a crash
#   tests/e2e/libvirtd.sh bounce NS RUNDIR  # SIGTERM to libvirtd alone, then started again,
#                                           # as an upgrade does: its guests run on
#
# lab (in the host namespace) reaches the daemon through its unix socket at qemu:///system;
# SSH to guests must run inside the namespace (ip netns exec NS ...).
#
# Each daemon runs in the foreground under a subreaper (`tini -s`, in a session of its own):
# PID 1 of our machines reaps orphans late, and libvirt's QEMU capability probe otherwise waits
# on unreaped zombies for 2-5 minutes at the first define (shared/facts/offline-e2e.md).
#
# Where KVM is unusable (lab's own rule, src/host.rs: /dev/kvm opens read-write and the CPU
# shows vmx/svm; a nested "PVM" /dev/kvm fails it) both daemons run in a mount namespace of
# their own whose /dev has no kvm. Else libvirt 9 finds KVM in QEMU's capabilities probe but
# not for the QEMU user, judges its capabilities cache stale at every define and start, and
# probes QEMU again (25-40 s each here). Without /dev/kvm, QEMU is probed once as TCG and the
# cache stays valid, across daemon restarts too. LAB_E2E_KEEP_KVM=1 leaves /dev/kvm visible.
set -euo pipefail

cmd=${1:?start|stop}
ns=${2:?namespace name}
run=${3:?run directory for pid files}
shift 3

kvm_usable() { # as src/host.rs decides: /dev/kvm opens read-write and the cpu has vmx/svm
  [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo
}

without_kvm() { # (run inside `unshare -m`) /dev replaced by a copy without kvm, then exec "$@"
  # A file bound over /dev/kvm is not enough: libvirt moves every mount under /dev into
  # QEMU's own /dev and fails on that one. So a tmpfs gets the host's nodes (kvm left out)
  # and its mounts (pts, shm, ...) bound in, and is moved over /dev once the old one is gone.
  local dev=$run/dev m
  mkdir -p "$dev"
  mount -t tmpfs -o mode=0755,nosuid tmpfs "$dev"
  local mounts
  mounts=$(findmnt -rn -o TARGET | awk 'index($0, "/dev/") == 1 && !index(substr($0, 6), "/")' | sort -u)
  for m in /dev/*; do
    [ "$m" != /dev/kvm ] || continue
    if grep -qxF "$m" <<<"$mounts"; then
      mkdir -p "$dev/${m#/dev/}"
      mount --rbind "$m" "$dev/${m#/dev/}"
    else
      cp -a "$m" "$dev/"
    fi
  done
  umount -l /dev
  mount --move "$dev" /dev
  exec "$@"
}

hide_kvm=()
if [[ $cmd == start || $cmd == restart || $cmd == revive || $cmd == bounce ]] && [ -e /dev/kvm ] && [ -z "${LAB_E2E_KEEP_KVM:-}" ] && ! kvm_usable; then
  hide_kvm=(unshare -m --propagation private bash "$0" without_kvm "$ns" "$run")
fi

daemon() { # daemon NAME: NAME in the foreground under tini -s in the netns; tini's PID recorded
  command -v tini >/dev/null || { echo "tini is missing: bash scripts/host-packages.sh installs it" >&2; exit 1; }
  ip netns exec "$ns" "${hide_kvm[@]}" setsid tini -s -- "$1" </dev/null >>"$run/$1.log" 2>&1 &
  echo $! >"$run/$1.pid"
}

start() {
  mkdir -p "$run" /var/lib/libvirt/dnsmasq /var/log/libvirt/qemu /var/lib/libvirt/images
  if [ -S /var/run/libvirt/libvirt-sock ]; then
    if virsh -c qemu:///system version >/dev/null 2>&1; then
      echo "a libvirtd already answers on this host: stop it first (this test starts its own)" >&2
      exit 1
    fi
    # A socket left by a libvirtd that was killed: nothing listens on it.
    rm -f /var/run/libvirt/libvirt-sock /var/run/libvirt/libvirt-sock-ro /var/run/libvirt/libvirt-admin-sock
  fi
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  [ ${#hide_kvm[@]} -eq 0 ] || echo "kvm is unusable here: libvirtd runs without /dev/kvm (TCG; its capabilities cache stays valid)" >&2
  daemons
}

daemons() { # virtlogd (unless it runs) and libvirtd started; returns once libvirtd answers
  if ! { [ -f "$run/virtlogd.pid" ] && kill -0 "$(cat "$run/virtlogd.pid")" 2>/dev/null; }; then
    daemon virtlogd
  fi
  daemon libvirtd
  for _ in $(seq 1 100); do
    [ -S /var/run/libvirt/libvirt-sock ] && virsh -c qemu:///system version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "libvirtd did not answer within 10 s" >&2
  exit 1
}

stop_pid() {
  local f=$1
  [ -f "$f" ] || return 0
  local pid
  pid=$(cat "$f")
  # The daemon and every process orphaned to its subreaper: the QEMU guests this daemon
  # started (a test that failed midway leaves them running) end with it.
  local children
  children=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
  if kill "$pid" 2>/dev/null; then # tini passes the signal on and exits with its child
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    for p in $children $pid; do kill -9 "$p" 2>/dev/null || true; done
  fi
  rm -f "$f"
}

stop() {
  stop_pid "$run/libvirtd.pid"
  stop_pid "$run/virtlogd.pid"
  # Guests of a daemon that crashed or bounced are orphans no subreaper of ours holds; every
  # process left in the namespace this script made is one of them.
  local p
  for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  ip netns delete "$ns" 2>/dev/null || true
}

kill_libvirtd() { # kill_libvirtd SIGNAL: libvirtd alone (not its subreaper's other children)
  local tini child
  tini=$(cat "$run/libvirtd.pid")
  child=$(ps -o pid=,comm= --ppid "$tini" | awk '$2 == "libvirtd" {print $1}')
  [ -n "$child" ] || { echo "no libvirtd under pid $tini" >&2; exit 1; }
  kill "-$1" "$child"
  # tini ends with its child; the guests, reparented, run on.
  for _ in $(seq 1 300); do kill -0 "$tini" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$tini" 2>/dev/null && { echo "libvirtd (pid $child) did not end within 30 s" >&2; exit 1; }
  rm -f "$run/libvirtd.pid"
}

crash() {
  kill_libvirtd KILL
}

revive() {
  rm -f /var/run/libvirt/libvirt-sock /var/run/libvirt/libvirt-sock-ro /var/run/libvirt/libvirt-admin-sock
  daemons
}

bounce() {
  kill_libvirtd TERM
  revive
}

restart() {
  stop_pid "$run/libvirtd.pid"
  stop_pid "$run/virtlogd.pid"
  rm -f /var/run/libvirt/libvirt-sock /var/run/libvirt/libvirt-sock-ro /var/run/libvirt/libvirt-admin-sock
  daemons
}

"$cmd" "$@"

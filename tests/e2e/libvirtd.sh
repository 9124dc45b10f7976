#!/usr/bin/env bash
# Starts or stops a private libvirtd (with its virtlogd) inside a network namespace, so every
# bridge, tap and packet of the test's guests stays in that namespace. Our hosts have no
# systemd: the daemons are started by hand and stopped by the PIDs this script recorded.
#
#   tests/e2e/libvirtd.sh start NS RUNDIR   # creates netns NS, starts the daemons
#   tests/e2e/libvirtd.sh stop  NS RUNDIR   # stops them by PID, deletes NS
#
# lab (in the host namespace) reaches the daemon through its unix socket at qemu:///system;
# SSH to guests must run inside the namespace (ip netns exec NS ...).
set -euo pipefail

cmd=${1:?start|stop}
ns=${2:?namespace name}
run=${3:?run directory for pid files}

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
  ip netns exec "$ns" virtlogd -d -p "$run/virtlogd.pid"
  ip netns exec "$ns" libvirtd -d -p "$run/libvirtd.pid"
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
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

stop() {
  stop_pid "$run/libvirtd.pid"
  stop_pid "$run/virtlogd.pid"
  ip netns delete "$ns" 2>/dev/null || true
}

"$cmd"

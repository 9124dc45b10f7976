#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running lab, as root:
#
#   bash scripts/lab-up.sh [LAB]          (LAB: openstack-debian12, the default, or openstack-ocata)
#
# Installs the host packages, builds `lab`, gets the lab's image (debian12 is built offline
# from Debian packages; centos7 is downloaded), then `lab up`. A libvirtd that already answers
# on qemu:///system (a workstation) is used as it is; on a machine without one (no systemd,
# like our CI runners) a private libvirtd is started inside the network namespace `lab`, so
# the guests' traffic stays in it: then prefix lab commands with LAB_NETNS=lab, as printed.
set -euo pipefail
cd "$(dirname "$0")/.."
lab_file=${1:-openstack-debian12}

bash scripts/host-packages.sh
command -v cargo >/dev/null || { echo "cargo is missing: install Rust (rustup) first" >&2; exit 1; }
cargo build --release --locked
lab=target/release/lab

image=$([ "$lab_file" = openstack-ocata ] && echo centos7 || echo debian12)
if ! "$lab" image list --json | grep -A3 "\"name\": \"$image\"" | grep -q '"cached": true'; then
  if [ "$image" = centos7 ]; then "$lab" image pull centos7; else "$lab" image build debian12 --full; fi
fi

if virsh -c qemu:///system version >/dev/null 2>&1; then
  "$lab" up --lab "$lab_file"
else
  mkdir -p /run/lab
  if ! ip netns list | grep -qx 'lab\( .*\)\?'; then
    tests/e2e/libvirtd.sh start lab /run/lab
  fi
  LAB_NETNS=lab "$lab" up --lab "$lab_file"
  echo "libvirtd runs in the network namespace 'lab': use LAB_NETNS=lab $lab ssh controller, ..."
  echo "stop it with: tests/e2e/libvirtd.sh stop lab /run/lab (after $lab down)"
fi

#!/usr/bin/env bash
# End-to-end: `lab class` on the real libvirtd (the one host here; tests/class.rs places
# classes across several test-driver hosts): the placement comes from the room libvirt reports
# (free memory, vCPUs at 2 per host CPU), two seats are brought up at once without
# provisioning, `lab class status` and `lab class ssh-config` read them back from the class
# file and libvirt, and `lab class down` leaves nothing of either in libvirt or in the state.
#
#   sudo tests/e2e/class.sh      (or with the shared libvirtd of .ci/run: see lib.sh)
#
# Prints `PHASE <name> <seconds>`; exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/../.."

source tests/e2e/lib.sh
lab_file=openstack-debian12
lab_name=ocata-deb
class=(--class e2e -l "$lab_file")

on_exit() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    echo "== class FAILED (status $status)" >&2
    "${lab[@]}" class down "${class[@]}" >&2 || true
  fi
  e2e_teardown
  exit "$status"
}
trap on_exit EXIT
e2e_setup class

up=("${lab[@]}" class up "${class[@]}" --hosts qemu:///system --subnet-pool 198.18.0.0/23
  --no-provision)

placement() {
  local plan
  plan=$("${up[@]}" --count 2 --dry-run)
  echo "$plan"
  [ "$(grep -cE '^  s[12] +qemu:///system$' <<<"$plan")" -eq 2 ] \
    || { echo "not both seats on the host" >&2; return 1; }
  [ ! -e "$LAB_STATE_DIR/classes/e2e.toml" ] || { echo "--dry-run recorded the class" >&2; return 1; }
}
phase placement placement

phase class-up "${up[@]}" --count 2
[ -f "$LAB_STATE_DIR/classes/e2e.toml" ] || { echo "no class file" >&2; exit 1; }
for s in s1 s2; do
  for n in controller compute1; do
    state=$(virsh -q -c qemu:///system domstate "lab-$lab_name-$s-$n")
    [ "$state" = running ] || { echo "lab-$lab_name-$s-$n is $state" >&2; exit 1; }
  done
done
expect "class status" '^  s2 +qemu:///system +controller running, compute1 running$' \
  "${lab[@]}" class status "${class[@]}"
expect "class ssh-config" "^Host controller lab-$lab_name-s2-controller$" \
  "${lab[@]}" class ssh-config "${class[@]}"

phase class-down "${lab[@]}" class down "${class[@]}"
left=$(lab_objects "$lab_name-s")
[ -z "$left" ] || { echo "libvirt still holds: $left" >&2; exit 1; }
[ ! -e "$LAB_STATE_DIR/classes/e2e.toml" ] || { echo "the class file is still there" >&2; exit 1; }
for s in s1 s2; do
  [ ! -e "$LAB_STATE_DIR/$lab_name-$s" ] || { echo "the state of $s is still there" >&2; exit 1; }
done
echo "class: 1 passed, 0 failed"

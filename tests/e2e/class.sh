#!/usr/bin/env bash
# End-to-end: `lab class` across three hosts: two test-driver hosts (`test:///<file>`, one
# short of memory for a seat, one short of vCPUs) and the real libvirtd. The placement comes
# from the room each host reports through libvirt (free memory, vCPUs at 2 per host CPU, less
# its running domains): both seats land on the real host, and a class one seat too big for it
# fails naming what every host has left. Two seats are brought up at once without
# provisioning, `lab class status` and `lab class ssh-config` read them back from the class
# file and libvirt, `lab class down s1` takes one seat (the class file keeps the other), and
# `lab class down` leaves nothing of either in libvirt or in the state.
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

# test_host NAME GIB CPUS BUSY_VCPUS: a test-driver host of GIB GiB and CPUS CPUs running a
# domain of 1 GiB and BUSY_VCPUS vCPUs; its URI. A seat of this lab takes 6 GiB and 2 vCPUs.
test_host() {
  cat >"$work/$1.xml" <<EOF
<node><cpu><mhz>2000</mhz><model>i686</model><nodes>1</nodes><sockets>1</sockets><cores>$3</cores><threads>1</threads><active>$3</active></cpu><memory>$(($2 << 20))</memory>
<domain type='test'><name>busy</name><memory>$((1 << 20))</memory><vcpu>$4</vcpu><os><type>hvm</type></os></domain></node>
EOF
  echo "test://$work/$1.xml"
}
short_of_memory=$(test_host short-of-memory 5 8 1) # 4 GiB and 15 vCPUs left
short_of_vcpus=$(test_host short-of-vcpus 64 1 1)  # 63 GiB and 1 vCPU left
up=("${lab[@]}" class up "${class[@]}" --hosts "$short_of_memory,$short_of_vcpus,qemu:///system"
  --subnet-pool 198.18.0.0/23 --no-provision)

placement() {
  local plan out status=0 seats
  plan=$("${up[@]}" --count 2 --dry-run)
  echo "$plan"
  [ "$(grep -cE '^  s[12] +qemu:///system$' <<<"$plan")" -eq 2 ] \
    || { echo "not both seats on the real host" >&2; return 1; }
  [ ! -e "$LAB_STATE_DIR/classes/e2e.toml" ] || { echo "--dry-run recorded the class" >&2; return 1; }
  # The real host has room for at most one seat per CPU (2 vCPUs each, 2 per CPU): one more
  # seat than that fits nowhere, and the error says what each of the three hosts has left.
  seats=$(($(nproc) + 1))
  out=$("${up[@]}" --count "$seats" --dry-run 2>&1) || status=$?
  echo "$out"
  [ "$status" -ne 0 ] || { echo "a class of $seats fitted" >&2; return 1; }
  grep -qE "no host has room for instance s[0-9]+ \(6144 MiB, 2 vCPUs; left: .*short-of-memory\.xml 4096 MiB 15 vCPUs, .*short-of-vcpus\.xml 64512 MiB 1 vCPUs, qemu:///system [0-9]+ MiB [0-9-]+ vCPUs\)" <<<"$out" \
    || { echo "not what every host has left" >&2; return 1; }
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

# One seat down: only its objects and state go, the class file keeps the other.
down_one() {
  "${lab[@]}" class down "${class[@]}" s1
  [ -z "$(lab_objects "$lab_name-s1")" ] || { echo "s1 left: $(lab_objects "$lab_name-s1")" >&2; return 1; }
  [ -n "$(lab_objects "$lab_name-s2")" ] || { echo "s2 went with s1" >&2; return 1; }
  [ ! -e "$LAB_STATE_DIR/$lab_name-s1" ] || { echo "the state of s1 is still there" >&2; return 1; }
  ! grep -q '"s1"' "$LAB_STATE_DIR/classes/e2e.toml" || { echo "the class file still has s1" >&2; return 1; }
  grep -q '"s2"' "$LAB_STATE_DIR/classes/e2e.toml" || { echo "the class file lost s2" >&2; return 1; }
}
phase class-down-s1 down_one
expect "class status after s1 went" '^  s2 +qemu:///system +controller running, compute1 running$' \
  "${lab[@]}" class status "${class[@]}"
[ "$("${lab[@]}" class status "${class[@]}" | grep -c '^  s1 ')" -eq 0 ] \
  || { echo "class status still lists s1" >&2; exit 1; }

phase class-down "${lab[@]}" class down "${class[@]}"
for s in s1 s2; do
  left=$(lab_objects "$lab_name-$s")
  [ -z "$left" ] || { echo "libvirt still holds of $s: $left" >&2; exit 1; }
done
[ ! -e "$LAB_STATE_DIR/classes/e2e.toml" ] || { echo "the class file is still there" >&2; exit 1; }
for s in s1 s2; do
  [ ! -e "$LAB_STATE_DIR/$lab_name-$s" ] || { echo "the state of $s is still there" >&2; exit 1; }
done
echo "class: 1 passed, 0 failed"

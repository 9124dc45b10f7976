#!/usr/bin/env bash
# End-to-end: the real `lab` binary on a real libvirtd (started here, inside a network
# namespace of its own) with the offline-built Debian 12 image, under TCG on our machines.
#
#   sudo tests/e2e/run.sh            (root: netns, libvirtd, loop devices for the image build)
#
# Phases: up (boot, provision, verify, lab-up snapshot), verify, an idempotent provision,
# snapshot save, a change inside a guest, reset (the change is gone, checks pass), down
# (libvirt holds nothing of the lab, its state directory is gone). Prints `PHASE <name>
# <seconds>` per phase; exits non-zero if anything failed, after printing the serial console
# tails and the step logs. Daemons are stopped by PID and the namespace deleted in any case.
set -euo pipefail
cd "$(dirname "$0")/../.."

ns=lab-e2e-$$
work=$(mktemp -d /var/tmp/lab-e2e.XXXXXX)
chmod 0755 "$work"
export LAB_STATE_DIR=$work/state LAB_CACHE_DIR=$work/cache LAB_NETNS=$ns
export LIBVIRT_DEFAULT_URI=qemu:///system
lab_file=openstack-debian12
lab_name=ocata-deb
image_cache=${LAB_E2E_IMAGE_CACHE:-/var/cache/lab-e2e}

[ -x target/debug/lab ] || cargo build --locked --quiet
lab=(timeout 1200 target/debug/lab)

phase() { # phase NAME CMD...: runs CMD, prints PHASE NAME SECONDS
  local name=$1 start ms
  shift
  start=$(date +%s%N)
  echo "== $name: $*" >&2
  "$@"
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf 'PHASE %s %d.%03d\n' "$name" $((ms / 1000)) $((ms % 1000))
}

on_exit() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    echo "== e2e FAILED (status $status): serial consoles and step logs" >&2
    for f in /var/log/libvirt/qemu/lab-$lab_name-*-serial.log; do
      [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
    done
    for f in "$LAB_STATE_DIR/$lab_name"/logs/*.log; do
      [ -f "$f" ] && { echo "--- $f" >&2; tail -n 60 "$f" >&2; }
    done
    "${lab[@]}" down -l "$lab_file" >&2 || true
  fi
  tests/e2e/libvirtd.sh stop "$ns" "$work/run" || true
  rm -rf "$work"
  exit "$status"
}
trap on_exit EXIT

phase libvirtd tests/e2e/libvirtd.sh start "$ns" "$work/run"
# (No `tee /dev/stderr` here: reopening stderr truncates a log file it is redirected to.)
built=$(LAB="target/debug/lab" tests/e2e/build-image.sh --full "$image_cache")
echo "$built"
image=$(echo "$built" | awk '$1 == "IMAGE" {print $2}')
phase import "${lab[@]}" image import debian12 "$image"

phase up "${lab[@]}" up -l "$lab_file"
phase verify "${lab[@]}" verify -l "$lab_file"

# Living in the lab: every user-facing command on the running lab.
expect() { # expect WHAT PATTERN CMD...: CMD's output must match PATTERN
  local what=$1 pattern=$2 out
  shift 2
  out=$("$@" 2>&1) || { echo "$what failed: $out" >&2; return 1; }
  grep -qE "$pattern" <<<"$out" || { echo "$what: no '$pattern' in: $out" >&2; return 1; }
  echo "ok: $what"
}
expect "status --json" '"state": "running"' "${lab[@]}" status --json -l "$lab_file"
expect "creds" '^RABBIT_PASS +[0-9a-f]{20}$' "${lab[@]}" creds -l "$lab_file"
expect "inventory" '^compute1 ansible_host=203\.0\.113\.31' "${lab[@]}" inventory -l "$lab_file"
"${lab[@]}" ssh-config -l "$lab_file" > "$work/ssh_config"
expect "openssh with ssh-config" '^controller$' ip netns exec "$ns" ssh -F "$work/ssh_config" -o BatchMode=yes controller hostname
expect "lab ssh" '^10\.0\.0\.11' "${lab[@]}" ssh compute1 -l "$lab_file" -- getent hosts controller
expect "console" 'login:' bash -c "printf '\\n' | timeout 30 target/debug/lab console controller -l $lab_file"
expect "logs --provision" 'run script' "${lab[@]}" logs controller --provision -l "$lab_file"
expect "logs --serial" 'cloud-init' "${lab[@]}" logs controller --serial -l "$lab_file"
expect "doctor" 'ok +image' "${lab[@]}" doctor -l "$lab_file"

out=$(phase provision-again "${lab[@]}" provision -l "$lab_file" 2>&1)
echo "$out"
echo "$out" | grep -q ' 0 changed$' || { echo "a second provision changed something" >&2; exit 1; }

phase snapshot-save "${lab[@]}" snapshot save ex1 -l "$lab_file"
"${lab[@]}" ssh controller -l "$lab_file" -- touch /root/exercise-marker
"${lab[@]}" ssh controller -l "$lab_file" -- test -f /root/exercise-marker
phase reset "${lab[@]}" reset ex1 -l "$lab_file"
if "${lab[@]}" ssh controller -l "$lab_file" -- test -e /root/exercise-marker; then
  echo "the change made after snapshot ex1 survived the reset" >&2
  exit 1
fi
phase verify-after-reset "${lab[@]}" verify -l "$lab_file"
phase reset-lab-up "${lab[@]}" reset -l "$lab_file"
phase verify-after-reset-lab-up "${lab[@]}" verify -l "$lab_file"
expect "snapshot list --json" '"ex1"' "${lab[@]}" snapshot list --json -l "$lab_file"

phase down "${lab[@]}" down -l "$lab_file"
left=$(virsh -c qemu:///system "list --all --name; net-list --all --name; pool-list --all --name" | grep -c "lab-$lab_name" || true)
[ "$left" -eq 0 ] || { echo "libvirt still holds $left objects of the lab" >&2; virsh -c qemu:///system "list --all; net-list --all; pool-list --all" >&2; exit 1; }
[ ! -e "$LAB_STATE_DIR/$lab_name" ] || { echo "the state directory $LAB_STATE_DIR/$lab_name is still there" >&2; exit 1; }
echo "e2e: 1 passed, 0 failed"

#!/usr/bin/env bash
# End-to-end: two instances of openstack-debian12 (`--instance s1`, `--instance s2`) brought
# up at once on one libvirtd, each with its own external subnet from a pool of two and the
# guide's internal addresses, each controller's 10.0.0.31 answering with its own compute
# node's MAC (the internal networks are apart), `lab list` showing both, both as a class:
# `lab class verify` with one seat broken, `lab class reset` of that seat, `lab class stop`
# and `start` of it (the other runs on); a third instance
# finds the pool exhausted and fails at once, creating nothing; both go down with nothing
# of either left in libvirt or in the state directory. Both are provisioned and verified by
# their own `lab up` while the other one runs (four TCG guests on two cores: about 12
# minutes).
#
#   sudo tests/e2e/instances.sh      (or with the shared libvirtd of .ci/run: see lib.sh)
#
# Prints `PHASE <name> <seconds>` (up-s1 and up-s2 each, up-both for the pair).
set -euo pipefail
cd "$(dirname "$0")/../.."

source tests/e2e/lib.sh
# LAB_E2E_INSTANCES_LAB: another lab file (a copy of openstack-debian12 under another name,
# to run beside a benchmark of that lab); its name must be given in LAB_E2E_INSTANCES_NAME.
lab_file=${LAB_E2E_INSTANCES_LAB:-openstack-debian12}
lab_name=${LAB_E2E_INSTANCES_NAME:-ocata-deb}
pool=198.18.0.0/23 # room for exactly two /24 instances

on_exit() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    echo "== instances FAILED (status $status): serial consoles and step logs" >&2
    for f in /var/log/libvirt/qemu/lab-"$lab_name"-s[12].logs/*-serial.log; do
      [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
    done
    for f in "$LAB_STATE_DIR"/"$lab_name"-s[12]/logs/*.log; do
      [ -f "$f" ] && { echo "--- $f" >&2; tail -n 40 "$f" >&2; }
    done
    for s in s1 s2; do "${lab[@]}" down -l "$lab_file" --instance "$s" >&2 || true; done
  fi
  e2e_teardown
  exit "$status"
}
trap on_exit EXIT
e2e_setup instances

# Both `lab up` at once: each places its instance under the placement lock, converges,
# boots, provisions and verifies; the PHASE line of each comes from its own run. s2 starts
# once s1's storage is done (its networks come next): s2 copies the image from s1's pool
# on the host rather than upload it again.
up_both() {
  local s pids=() status=0
  for s in s1 s2; do
    if [ "$s" = s2 ]; then
      for _ in $(seq 1 600); do
        grep -qE '^[0-9:]+ network ' "$work/up-s1.log" 2>/dev/null && break
        kill -0 "${pids[0]}" 2>/dev/null || break
        sleep 0.5
      done
    fi
    # Four TCG guests booting at once on two cores: minutes each, so longer bounds.
    (phase "up-$s" timeout 2700 target/debug/lab up -l "$lab_file" --instance "$s" \
      --subnet-pool "$pool" --timeout 1800 >"$work/up-$s.log" 2>&1) \
      >"$work/phase-$s" &
    pids+=("$!")
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
  for s in s1 s2; do
    echo "--- lab up --instance $s" >&2
    cat "$work/up-$s.log" >&2
    cat "$work/phase-$s"
  done
  [ "$status" -eq 0 ] || { echo "an instance's up failed (exit $status)" >&2; return 1; }
  grep -qE ' volume +image-debian12\.qcow2 +copied ' "$work/up-s2.log" \
    || { echo "s2 did not copy the image from s1's pool" >&2; return 1; }
  for s in s1 s2; do
    grep -q '^pass  amqp-login' "$work/up-$s.log" \
      || { echo "$s: up did not verify the lab" >&2; return 1; }
    if grep -q '^FAIL' "$work/up-$s.log"; then echo "$s: a check failed" >&2; return 1; fi
  done
}
phase up-both up_both

on() { # on INSTANCE NODE COMMAND: COMMAND on the node, retried until it succeeds while the
  # node boots (bounded: 15 minutes)
  local s=$1 node=$2
  for _ in $(seq 1 180); do
    "${lab[@]}" ssh "$node" -l "$lab_file" --instance "$s" -- "$3" 2>"$work/ssh.err" && return 0
    sleep 5
  done
  cat "$work/ssh.err" >&2
  return 1
}

# Each controller has its own external address in the pool and the guide's internal one, and
# its 10.0.0.31 is its own compute node (the MAC `lab plan` gives that instance's compute1).
addresses() {
  local s a1 a2 mac want
  for s in s1 s2; do
    on "$s" controller "ip -4 -o addr show" >"$work/addr-$s"
    grep -q ' 10\.0\.0\.11/24 ' "$work/addr-$s" || { echo "$s: no 10.0.0.11" >&2; return 1; }
    on "$s" compute1 true
    mac=$(on "$s" controller "timeout 5 bash -c 'exec 3<>/dev/tcp/10.0.0.31/22'; ip neigh show 10.0.0.31" | awk '{print $5}')
    want=$("${lab[@]}" plan -l "$lab_file" --instance "$s" --accel tcg --json | python3 -c '
import json, sys
p = json.load(sys.stdin)
print([c["mac"] for n in p["nodes"] if n["name"] == "compute1" for c in n["nics"] if c["network"] == "internal"][0])')
    [ "$mac" = "$want" ] || { echo "$s: 10.0.0.31 is $mac, not its compute1 ($want)" >&2; return 1; }
    echo "ok: $s controller reaches its own compute1 at 10.0.0.31 ($mac)"
  done
  a1=$(grep -oE '198\.18\.[01]\.11/24' "$work/addr-s1") || { echo "s1: no pool address" >&2; return 1; }
  a2=$(grep -oE '198\.18\.[01]\.11/24' "$work/addr-s2") || { echo "s2: no pool address" >&2; return 1; }
  [ "$a1" != "$a2" ] || { echo "both instances on $a1" >&2; return 1; }
  echo "ok: s1 controller $a1, s2 controller $a2, both 10.0.0.11"
}
phase addresses addresses
for s in s1 s2; do
  expect "lab list shows $s" "^$lab_name-$s +$s +yes +compute1 running, controller running\$" \
    "${lab[@]}" list
done

# The instructor's view (issue 20): the two instances as the seats of class e2e (the class
# file `lab class up` records; written here, since placing the class again would find the
# host full of these very seats), one seat broken: `lab class verify` prints one table, a
# column per seat, and `lab class reset s2` brings that seat back to lab-up.
# shellcheck disable=SC2016 # the hints quote commands in backquotes
class_verify() {
  local out status=0 json
  mkdir -p "$LAB_STATE_DIR/classes"
  printf 'lab = "%s"\n\n[[instances]]\ninstance = "s1"\nuri = "qemu:///system"\n\n[[instances]]\ninstance = "s2"\nuri = "qemu:///system"\n' \
    "$lab_file" >"$LAB_STATE_DIR/classes/e2e.toml"
  "${lab[@]}" ssh controller -l "$lab_file" --instance s2 -- systemctl stop memcached
  out=$("${lab[@]}" class verify --class e2e 2>/dev/null) || status=$?
  echo "$out"
  [ "$status" -eq 4 ] || { echo "class verify: exit $status, not 4" >&2; return 1; }
  grep -qE '^memcached-listen +controller +pass +FAIL *$' <<<"$out" || { echo "no memcached-listen row: s1 pass, s2 FAIL" >&2; return 1; }
  grep -qE '^amqp-permissions +compute1 +pass +pass *$' <<<"$out" || { echo "no amqp-permissions row passing on both" >&2; return 1; }
  grep -qE '^seats: s1 ([0-9]+)/\1 pass, s2 [0-9]+/[0-9]+ pass$' <<<"$out" || { echo "no seats line (s1 all passed)" >&2; return 1; }
  grep -qF 'FAIL s2 memcached-enabled on controller: memcached is enabled but inactive; the guide runs `systemctl start memcached`' <<<"$out" \
    || { echo "s2's failure and its hint are not listed" >&2; return 1; }
  json=$("${lab[@]}" class verify --class e2e --json memcached 2>/dev/null) || true
  python3 -c '
import json, sys
seats = {s["instance"]: s for s in json.load(sys.stdin)["seats"]}
assert all(c["passed"] for c in seats["s1"]["checks"]), seats["s1"]
failed = sorted(c["name"] for c in seats["s2"]["checks"] if not c["passed"])
assert failed == ["memcached", "memcached-enabled", "memcached-listen"], failed
assert {c["step"] for c in seats["s1"]["checks"]} == {"memcached"}
print("ok: class verify --json memcached: s2 fails", failed)' <<<"$json"
  "${lab[@]}" class reset s2 --class e2e
  "${lab[@]}" class verify --class e2e memcached
  # One seat stopped and started again (issue 21): s1 runs on, s2's nodes saved, then back.
  out=$("${lab[@]}" class stop s2 --class e2e 2>/dev/null)
  echo "$out"
  grep -qE '^s2 .* stopped \(memory saved\)' <<<"$out" || { echo "class stop s2 did not say it" >&2; return 1; }
  [ "$(virsh -q -c qemu:///system list --name --state-running | grep -c "^lab-$lab_name-s2-")" -eq 0 ] \
    || { echo "s2 still runs after class stop s2" >&2; return 1; }
  [ "$(virsh -q -c qemu:///system list --name --state-running | grep -c "^lab-$lab_name-s1-")" -eq 2 ] \
    || { echo "class stop s2 stopped s1 too" >&2; return 1; }
  out=$("${lab[@]}" class start s2 --class e2e 2>/dev/null)
  echo "$out"
  grep -qE '^s2 .* started \(restored: ' <<<"$out" || { echo "class start s2 did not restore it" >&2; return 1; }
  "${lab[@]}" class verify --class e2e
  rm "$LAB_STATE_DIR/classes/e2e.toml"
}
phase class-verify class_verify

# A third instance: no /24 left in the pool; nothing of it is created.
exhausted() {
  local out status=0
  out=$("${lab[@]}" up -l "$lab_file" --instance s3 --subnet-pool "$pool" 2>&1) || status=$?
  echo "$out" >&2
  [ "$status" -eq 2 ] || { echo "third instance: exit $status, not 2" >&2; return 1; }
  grep -q "no free /24 left in the subnet pool $pool" <<<"$out" \
    || { echo "third instance: not the pool's error" >&2; return 1; }
  [ -z "$(lab_objects "$lab_name-s3")" ] || { echo "objects of s3 were created" >&2; return 1; }
  [ ! -e "$LAB_STATE_DIR/$lab_name-s3" ] || { echo "state of s3 was left" >&2; return 1; }
}
phase pool-exhausted exhausted

down_both() {
  local s
  for s in s1 s2; do
    "${lab[@]}" down -l "$lab_file" --instance "$s"
    [ -z "$(lab_objects "$lab_name-$s")" ] || { echo "$s left: $(lab_objects "$lab_name-$s")" >&2; return 1; }
    [ ! -e "$LAB_STATE_DIR/$lab_name-$s" ] || { echo "state of $s left" >&2; return 1; }
  done
}
phase down-both down_both
echo "instances: 1 passed, 0 failed"

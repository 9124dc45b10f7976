#!/usr/bin/env bash
# The floor of a second `lab provision`: on a lab that is up and provisioned, ROUNDS rounds
# (default 4) of `lab provision`, then the same checks by hand: each node's transcript from
# `lab plan --out` (provision.sh: every step's check, and its apply only where one fails, so
# nothing runs but checks on a provisioned node) over one OpenSSH session per node, both nodes
# at once. The controller's transcript leaves mq-user's check out: lab proves those rights
# over AMQP, where the transcript boots rabbitmqctl (an Erlang VM, ~10 s under TCG).
#
#   LAB=target/release/lab bash tests/bench/provision-floor.sh LABFILE
#
# Uses the caller's LAB_STATE_DIR, LAB_NETNS and LIBVIRT_DEFAULT_URI (a local lab: the guests
# are reached from LAB_NETNS when set). Prints `FLOOR lab_provision_again <s>` and `FLOOR
# hand_checks_both <s>` per round, after `FLOOR lab_provision_first <s>`: the first `lab
# provision` (on a lab just up, as the bench's provision_again), not part of the rounds.
set -euo pipefail
lab_file=${1:?usage: provision-floor.sh LABFILE}
lab=${LAB:-target/release/lab}
rounds=${ROUNDS:-4}
work=$(mktemp -d /var/tmp/lab-floor.XXXXXX)
trap 'rm -rf "$work"' EXIT
now() { date +%s%N; }
secs() { local ms=$(( ($2 - $1) / 1000000 )); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }
"$lab" plan -l "$lab_file" --out "$work/plan" >/dev/null
"$lab" ssh-config -l "$lab_file" >"$work/ssh_config"
awk '/^# == mq-user:/ {skip = 1; next} /^# == / {skip = 0} !skip' \
  "$work/plan/nodes/controller/provision.sh" >"$work/controller.sh"
cp "$work/plan/nodes/compute1/provision.sh" "$work/compute1.sh"
in_ns=()
[ -z "${LAB_NETNS:-}" ] || in_ns=(ip netns exec "$LAB_NETNS")
on() { "${in_ns[@]}" ssh -F "$work/ssh_config" -o BatchMode=yes "$1" sudo -n bash -s <"$work/$1.sh"; }
t=$(now)
"$lab" provision -l "$lab_file" >/dev/null 2>&1
echo "FLOOR lab_provision_first $(secs "$t" "$(now)")"
for _ in $(seq 1 "$rounds"); do
  t=$(now)
  "$lab" provision -l "$lab_file" >"$work/lab.log" 2>&1 || { cat "$work/lab.log" >&2; exit 1; }
  echo "FLOOR lab_provision_again $(secs "$t" "$(now)")"
  t=$(now)
  on controller >"$work/controller.log" 2>&1 & c=$!
  on compute1 >"$work/compute1.log" 2>&1 & d=$!
  status=0
  wait "$c" || status=$?
  wait "$d" || status=$?
  [ "$status" -eq 0 ] || { cat "$work"/*.log >&2; echo "a transcript failed" >&2; exit 1; }
  echo "FLOOR hand_checks_both $(secs "$t" "$(now)")"
  # A transcript that applied something was no round of checks alone.
  if [ -s "$work/controller.log" ] || [ -s "$work/compute1.log" ]; then
    cat "$work"/controller.log "$work"/compute1.log >&2
    echo "the transcripts printed (an apply ran): the lab was not provisioned" >&2
    exit 1
  fi
done

#!/usr/bin/env bash
# End-to-end: the real `lab` binary on a real libvirtd (started here, inside a network
# namespace of its own, or the one LAB_E2E_NETNS names: see lib.sh) with the offline-built
# Debian 12 image, under TCG on our machines.
#
#   sudo tests/e2e/run.sh            (root: netns, libvirtd, loop devices for the image build)
#   sudo LAB_E2E_REMOTE=1 tests/e2e/run.sh    the same through qemu+ssh:// to an sshd in the
#                                             netns, lab outside it (lib.sh, remote_setup)
#
# Phases: up interrupted by SIGINT while provisioning (exit 130, nodes keep running), up
# --stop-before mq (goes on to just before RabbitMQ, snapshot before-mq, the guide printed),
# the student's RabbitMQ commands checked one by one (`lab verify mq` naming what is
# missing), reset before-mq, MariaDB's openstack.cnf broken (each line named), up again (goes
# on: provision, verify, lab-up snapshot), verify, an idempotent provision,
# snapshot save, a change inside a guest, services broken (verify fails exactly the checks they
# prove), reset (the change is gone, checks pass), stop and start (memory saved; shut down;
# libvirtd restarted; a host reboot), down
# (libvirt holds nothing of the lab, its state directory is gone). Prints `PHASE <name>
# <seconds>` per phase; exits non-zero if anything failed, after printing the serial console
# tails and the step logs. Daemons are stopped by PID and the namespace deleted in any case.
set -euo pipefail
cd "$(dirname "$0")/../.."

source tests/e2e/lib.sh
lab_file=openstack-debian12
lab_name=ocata-deb

on_exit() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    echo "== e2e FAILED (status $status): serial consoles and step logs" >&2
    for f in /var/log/libvirt/qemu/lab-"$lab_name".logs/*-serial.log; do
      [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
    done
    for f in "$LAB_STATE_DIR/$lab_name"/logs/*.log; do
      [ -f "$f" ] && { echo "--- $f" >&2; tail -n 60 "$f" >&2; }
    done
    "${lab[@]}" down -l "$lab_file" >&2 || true
  fi
  remote_teardown
  e2e_teardown
  exit "$status"
}
trap on_exit EXIT
e2e_setup e2e
if [ -n "${LAB_E2E_REMOTE:-}" ]; then
  remote_setup
  echo "remote: lab in netns $remote_ns reaches the host through $LIBVIRT_DEFAULT_URI"
  if ip netns exec "$remote_ns" ip route get 203.0.113.11 >/dev/null 2>&1; then
    echo "lab's namespace has a route to the guests" >&2
    exit 1
  fi
  ssh_here=("${remote_ssh[@]}")
  ansible_where=(-- "${remote_run[@]}")
else
  ssh_here=(ip netns exec "$ns" ssh)
  ansible_where=("$ns")
fi

# Ctrl-C while the nodes are provisioned: `lab up` stops (exit 130), the nodes keep running,
# and the next `lab up` goes on where it stopped.
up_interrupted() {
  local out=$work/up-interrupted.log pid status
  # `timeout --foreground`: one SIGINT reaches lab. Plain `timeout` passes a signal on to its
  # child and again to its whole process group: two SIGINTs, and when lab's handler runs
  # between them (an idle machine), the second is the "stop now" one.
  timeout --foreground 1200 "${lab_bin[@]}" up -l "$lab_file" >"$out" 2>&1 &
  pid=$!
  local seen=
  for _ in $(seq 1 1200); do
    grep -qE '(controller|compute1) +chrony +(changed|ok)' "$out" && { seen=1; break; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if [ -z "$seen" ]; then # no step ran: the signal would test nothing
    kill "$pid" 2>/dev/null || true
    cat "$out" >&2
    echo "no provisioning step was seen within 600 s: the interruption was not tried" >&2
    return 1
  fi
  kill -INT "$pid" 2>/dev/null || true
  # Bounded: a lab that ignored the signal is a failure, not a hang.
  timeout 120 tail --pid="$pid" -f /dev/null || { kill -9 "$pid"; echo "up did not stop within 120 s of SIGINT" >&2; }
  status=0
  wait "$pid" || status=$?
  cat "$out" >&2
  [ "$status" -eq 130 ] || { echo "up interrupted during provisioning: exit $status, not 130" >&2; return 1; }
  grep -q 'interrupted by SIGINT' "$out" || { echo "no interruption message" >&2; return 1; }
  [ "$(virsh -q -c qemu:///system list --name --state-running | grep -c "^lab-$lab_name-")" -eq 2 ] \
    || { echo "the nodes did not keep running" >&2; return 1; }
}
phase up-interrupted up_interrupted

# The guide step by step (issue 20): the lab brought to just before RabbitMQ (going on from
# the interrupted up), the student's work checked with hints at each stage of the guide's
# commands, the step started again from its snapshot, MariaDB broken on purpose.
stop_before_mq() {
  local out=$work/stop-before-mq.log rabbit
  "${lab[@]}" up -l "$lab_file" --stop-before mq >"$out" 2>&1 || { cat "$out" >&2; return 1; }
  cat "$out"
  grep -q '^lab ocata-deb stopped before step mq on ' "$out" || { echo "no stop line" >&2; return 1; }
  grep -q '^snapshot before-mq saved: `lab reset before-mq' "$out" || { echo "no before-mq snapshot" >&2; return 1; }
  grep -q '^pass  sql-secure ' "$out" || { echo "the steps before mq were not verified" >&2; return 1; }
  if grep -qE ' (mq|mq-user|memcached) +(changed|ok) ' "$out"; then
    echo "a step from mq on was provisioned" >&2
    return 1
  fi
  # The guide from mq on, with this lab's RABBIT_PASS where the student types it.
  rabbit=$("${lab[@]}" creds -l "$lab_file" | awk '$1 == "RABBIT_PASS" {print $2}')
  grep -q "rabbitmqctl add_user openstack $rabbit" "$out" || { echo "the guide lacks add_user with RABBIT_PASS" >&2; return 1; }
  grep -q 'memcached' "$out" || { echo "the guide stops before memcached" >&2; return 1; }
  [ "$(virsh -q -c qemu:///system snapshot-list "lab-$lab_name-controller" --name | grep -c '^before-mq$')" -eq 1 ] \
    || { echo "no before-mq snapshot on the controller" >&2; return 1; }
}
phase stop-before-mq stop_before_mq

# verify_json NAME STEP...: `lab --json verify STEP...` (every check without a step): its
# JSON report in $work/verify-NAME.json, printed a check a line; sets verify_status (its exit)
# and verify_failed (the failed checks' names, sorted, space-separated).
verify_json() {
  local name=$1 report=$work/verify-$1.json
  shift
  verify_status=0
  "${lab[@]}" --json verify "$@" -l "$lab_file" >"$report" 2>"$work/verify-$name.events" || verify_status=$?
  jq -e 'type == "array"' "$report" >/dev/null \
    || { cat "$report" "$work/verify-$name.events" >&2; echo "$name: no report of checks (exit $verify_status)" >&2; return 1; }
  jq -r '.[] | "\(if .passed then "pass" else "FAIL" end)  \(.name)  on \(.node)  \(.measured | gsub("\n"; " / "))\(if .hint then "\n      hint: \(.hint)" else "" end)"' "$report"
  verify_failed=$(jq -r '[.[] | select(.passed | not) | .name] | unique | join(" ")' "$report")
}
# hinted NAME TEXT: a failed check of verify_json NAME's report has a hint containing TEXT.
hinted() {
  jq -e --arg text "$2" 'any(.[]; (.hint // "") | contains($text))' "$work/verify-$1.json" >/dev/null \
    || { echo "$1: no hint says '$2'" >&2; return 1; }
}

# verify_mq NAME EXPECTED_FAILED [HINT]: `lab verify mq` fails exactly the checks named
# (sorted, space-separated; exit 4, or 0 when none) and a hint says HINT.
verify_mq() {
  local name=$1 want=$2 hint=${3:-}
  verify_json "mq-$name" mq
  [ "$verify_failed" = "$want" ] || { echo "$name: failed '$verify_failed', not '$want'" >&2; return 1; }
  if [ -n "$want" ]; then
    [ "$verify_status" -eq 4 ] || { echo "$name: exit $verify_status, not 4" >&2; return 1; }
  else
    [ "$verify_status" -eq 0 ] || { echo "$name: exit $verify_status" >&2; return 1; }
  fi
  [ -z "$hint" ] || hinted "mq-$name" "$hint"
  echo "ok: verify mq $name"
}
on_controller() { "${lab[@]}" ssh controller -l "$lab_file" -- "$@"; }
# (The hints quote commands in backquotes: single quotes keep them literal.)
# shellcheck disable=SC2016
student_mq() {
  local rabbit
  rabbit=$("${lab[@]}" creds -l "$lab_file" | awk '$1 == "RABBIT_PASS" {print $2}')
  verify_mq untouched "amqp-login amqp-permissions amqp-wrong-password mq-enabled" \
    'rabbitmq-server is disabled and inactive; the guide runs `systemctl enable rabbitmq-server`'
  # The guide's commands, one at a time, as the student types them.
  on_controller 'apt install -y rabbitmq-server >/dev/null && systemctl enable rabbitmq-server && systemctl start rabbitmq-server'
  verify_mq no-user "amqp-login amqp-permissions" \
    'the guide runs `rabbitmqctl add_user openstack RABBIT_PASS`'
  on_controller "rabbitmqctl add_user openstack $rabbit"
  verify_mq no-permissions "amqp-permissions" \
    'user openstack has no permissions on vhost /; the guide runs `rabbitmqctl set_permissions openstack ".*" ".*" ".*"`'
  on_controller 'rabbitmqctl set_permissions openstack ".*" ".*" ".*"'
  verify_mq all-done ""
}
phase student-mq student_mq
phase reset-before-mq "${lab[@]}" reset before-mq -l "$lab_file"
phase verify-mq-after-reset verify_mq after-reset "amqp-login amqp-permissions amqp-wrong-password mq-enabled" \
  'rabbitmq-server is disabled and inactive'

# MariaDB broken on purpose in the guide's own file: each failing check names its line.
sql_broken() {
  local conf=/etc/mysql/mariadb.conf.d/99-openstack.cnf
  on_controller "sed -i -e 's/^max_connections.*/max_connections = 200/' -e 's/^bind-address.*/bind-address = 0.0.0.0/' $conf && systemctl restart mariadb"
  verify_json sql sql
  [ "$verify_status" -eq 4 ] || { echo "verify sql: exit $verify_status, not 4" >&2; return 1; }
  [ "$verify_failed" = "sql-bind sql-config sql-not-external" ] || { echo "failed: '$verify_failed'" >&2; return 1; }
  hinted sql "max_connections is 200; the guide sets max_connections = 4096 in $conf"
  hinted sql "MariaDB listens on 0.0.0.0:3306, not 10.0.0.11:3306; the guide sets bind-address = 10.0.0.11 in $conf"
}
phase sql-broken sql_broken

# cut_during LOG PATTERN COMMAND...: runs COMMAND (its output in LOG), takes the host's end of
# the remote link down (silently: no FIN, no RST) once LOG matches PATTERN (or after 300 s),
# waits for COMMAND to end (240 s at most), brings the link back up and waits until the host
# answers on it (30 s at most). Sets cut_status to COMMAND's status; fails when COMMAND
# succeeded, ran on, or panicked.
cut_during() {
  local log=$1 pattern=$2 pid cut
  shift 2
  cut_status=0
  "$@" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 3000); do
    grep -qE "$pattern" "$log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "it ended before the link was cut" >&2; return 1; }
  cut=$(date +%s)
  ip -n "$ns" link set "$remote_veth" down
  timeout 240 tail --pid="$pid" -f /dev/null || echo "it still runs 240 s after the cut" >>"$log"
  kill "$pid" 2>/dev/null
  wait "$pid" || cut_status=$?
  ip -n "$ns" link set "$remote_veth" up
  remote_reachable 30 || return 1
  cat "$log" >&2
  echo "link cut: ended $(($(date +%s) - cut)) s after the cut with status $cut_status" >&2
  [ "$cut_status" -ne 0 ] || { echo "it succeeded across a cut link" >&2; return 1; }
  ! grep -qE 'panicked|still runs' "$log"
}

# The link to the remote host cut silently during provisioning (issue 23), as the step mq
# begins: `up` ends with exit 3 and one line naming the host (the libvirt connection and the
# nodes' SSH both went through it), within the SSH keepalive's bound; the `up` that follows,
# the link back, goes on (mq's install may still run on the node: it waits for its lock).
link_cut_up() {
  local log=$work/link-cut-up.log
  cut_during "$log" 'controller +sql-secure +(changed|ok)' "${lab[@]}" up -l "$lab_file" || return 1
  [ "$cut_status" -eq 3 ] || { echo "up across a cut link: exit $cut_status, not 3" >&2; return 1; }
  grep -q "^lab: lost the libvirt host $remote_host: " "$log" \
    || { echo "the error does not begin with the host lost" >&2; return 1; }
}
link_cut_up_fault() {
  if link_cut_up; then echo "FAULT remote-link-cut-up ok"; else echo "FAULT remote-link-cut-up FAILED"; return 1; fi
}
[ -z "${remote_veth:-}" ] || phase link-cut-up link_cut_up_fault
# `lab up` goes on from there: the broken file is put right, mq and memcached are done.
phase up "${lab[@]}" up -l "$lab_file"
phase verify "${lab[@]}" verify -l "$lab_file"
# A lab already past a step: no before-STEP snapshot is taken over the student's work.
expect "stop-before a step done" '^lab ocata-deb is past step memcached: its checks pass already, so no snapshot before-memcached was saved' \
  "${lab[@]}" up -l "$lab_file" --stop-before memcached
if virsh -q -c qemu:///system snapshot-list "lab-$lab_name-controller" --name | grep -qx before-memcached; then
  echo "a before-memcached snapshot was saved past the step" >&2
  exit 1
fi

# Living in the lab: every user-facing command on the running lab.
expect "status --json" '"state": "running"' "${lab[@]}" status --json -l "$lab_file"
expect "list" "^$lab_name +- +yes +compute1 running, controller running$" "${lab[@]}" list
expect "creds" '^RABBIT_PASS +[0-9a-f]{20}$' "${lab[@]}" creds -l "$lab_file"
expect "inventory" '^compute1 ansible_host=203\.0\.113\.31' "${lab[@]}" inventory -l "$lab_file"
"${lab[@]}" inventory -l "$lab_file" > "$work/inventory"
bash tests/e2e/ansible.sh "$work/inventory" "${ansible_where[@]}"   # prints PHASE ansible
"${lab[@]}" ssh-config -l "$lab_file" > "$work/ssh_config"
expect "openssh with ssh-config" '^controller$' "${ssh_here[@]}" -F "$work/ssh_config" -o BatchMode=yes controller hostname
expect "lab ssh" '^10\.0\.0\.11' "${lab[@]}" ssh compute1 -l "$lab_file" -- getent hosts controller
expect "console" 'login:' bash -c 'printf "\n" | timeout 30 "$@"' console "${lab_bin[@]}" console controller -l "$lab_file"
expect "logs --provision" 'run script' "${lab[@]}" logs controller --provision -l "$lab_file"
expect "logs --serial" 'cloud-init' "${lab[@]}" logs controller --serial -l "$lab_file"
expect "doctor" 'ok +image' "${lab[@]}" doctor -l "$lab_file"

out=$(phase provision-again "${lab[@]}" provision -l "$lab_file" 2>&1)
echo "$out"
echo "$out" | grep -q ' 0 changed$' || { echo "a second provision changed something" >&2; exit 1; }

phase snapshot-save "${lab[@]}" snapshot save ex1 -l "$lab_file"
"${lab[@]}" ssh controller -l "$lab_file" -- touch /root/exercise-marker
"${lab[@]}" ssh controller -l "$lab_file" -- test -f /root/exercise-marker
# The checks fail for the right reasons (the snapshot brings everything back): RabbitMQ and
# memcached stopped, MariaDB listening on every address.
verify_broken() {
  "${lab[@]}" ssh controller -l "$lab_file" -- systemctl stop rabbitmq-server memcached
  "${lab[@]}" ssh controller -l "$lab_file" -- \
    "printf '[mysqld]\\nbind-address = 0.0.0.0\\n' > /etc/mysql/mariadb.conf.d/99-zz-e2e-wide.cnf && systemctl restart mariadb"
  verify_json broken >&2
  [ "$verify_status" -ne 0 ] || { echo "verify passed on a broken lab" >&2; return 1; }
  [ "$verify_failed" = "amqp-login amqp-permissions amqp-wrong-password memcached memcached-enabled memcached-listen mq-enabled sql-bind sql-not-external" ] \
    || { echo "failed checks: '$verify_failed', not the broken services'" >&2; return 1; }
}
phase verify-broken verify_broken
phase reset "${lab[@]}" reset ex1 -l "$lab_file"
if "${lab[@]}" ssh controller -l "$lab_file" -- test -e /root/exercise-marker; then
  echo "the change made after snapshot ex1 survived the reset" >&2
  exit 1
fi
phase verify-after-reset "${lab[@]}" verify -l "$lab_file"
phase reset-lab-up "${lab[@]}" reset -l "$lab_file"
phase verify-after-reset-lab-up "${lab[@]}" verify -l "$lab_file"

# The link to the remote host cut silently (its end taken down: no FIN, no RST) during
# `reset`: lab ends within its probes' bound (OpenSSH's ServerAlive for libvirt's transport,
# the jump's keepalive) with an error naming the host; once the link is back, `reset`
# converges and the lab verifies. Also a FAULT line (issue 23).
link_cut() {
  local log=$work/link-cut.log
  cut_during "$log" 'revert|reverted' "${lab[@]}" reset -l "$lab_file" || return 1
  grep '^lab: ' "$log" | grep -q "$remote_host" || { echo "the error does not name $remote_host" >&2; return 1; }
  "${lab[@]}" reset -l "$lab_file" >&2 && "${lab[@]}" verify -l "$lab_file" >/dev/null
}
link_cut_fault() {
  if link_cut; then echo "FAULT remote-link-cut-reset ok"; else echo "FAULT remote-link-cut-reset FAILED"; return 1; fi
}
[ -z "${remote_veth:-}" ] || phase link-cut link_cut_fault
expect "snapshot list --json" '"ex1"' "${lab[@]}" snapshot list --json -l "$lab_file"

# A laptop's day (issue 21): `lab stop` frees the memory (no QEMU left, a managed save per
# node), `lab start` brings the lab back verified with the work kept; a libvirtd restarted
# while the lab is stopped (then `lab up` starts it, saying so); a clean shutdown and a host
# reboot (the networks destroyed with virsh), then `lab start` boots it.
qemu_count() { pgrep -fc "guest=lab-$lab_name-" || true; }
available_mib() { awk '/^MemAvailable/ {print int($2 / 1024)}' /proc/meminfo; }
laptop_stop() {
  local before after d info
  "${lab[@]}" ssh controller -l "$lab_file" -- 'echo kept > /root/before-stop'
  before=$(available_mib)
  phase stop "${lab[@]}" stop -l "$lab_file"
  after=$(available_mib)
  echo "MEMORY available before stop ${before} MiB, after ${after} MiB"
  [ "$(qemu_count)" -eq 0 ] || { echo "QEMU still runs for the lab after stop" >&2; return 1; }
  for d in controller compute1; do
    # (Read whole first: `grep -q` ends a pipe early, and pipefail takes virsh's SIGPIPE.)
    info=$(virsh -c qemu:///system dominfo "lab-$lab_name-$d")
    grep -qE '^Managed save: +yes' <<<"$info" || { echo "no managed save of $d: $info" >&2; return 1; }
  done
  expect "status saved" '^node +controller +saved ' "${lab[@]}" status -l "$lab_file"
  expect "status stopped" '^stopped: every node is saved or shut off; `lab start' "${lab[@]}" status -l "$lab_file"
}
laptop_stop
phase_saying start '^lab ocata-deb started \(restored: ' "${lab[@]}" start -l "$lab_file"
phase verify-after-start "${lab[@]}" verify -l "$lab_file"
"${lab[@]}" ssh controller -l "$lab_file" -- test -f /root/before-stop \
  || { echo "the file written before the stop is gone" >&2; exit 1; }

phase stop-again "${lab[@]}" stop -l "$lab_file"
phase libvirtd-restart tests/e2e/libvirtd.sh restart "$ns" "$daemon_run"
phase_saying up-stopped '^lab ocata-deb was stopped: started \(restored: ' "${lab[@]}" up -l "$lab_file"
phase verify-after-up-stopped "${lab[@]}" verify -l "$lab_file"

# A host shut down and booted again: its guests shut down cleanly first (as libvirt-guests
# does, and `lab stop --shutdown`), its networks inactive after the boot; `lab start` starts
# the networks and boots the nodes (one boot for both: CI's time is bounded).
phase stop-shutdown "${lab[@]}" stop --shutdown -l "$lab_file"
expect "status shut off" '^node +compute1 +shut off ' "${lab[@]}" status -l "$lab_file"
host_reboot() { # what a host reboot leaves: every domain (off already) and network inactive
  local d n
  for d in controller compute1; do
    [ "$(virsh -q -c qemu:///system domstate "lab-$lab_name-$d")" = "shut off" ] \
      || virsh -q -c qemu:///system destroy "lab-$lab_name-$d" >/dev/null
  done
  for n in external internal; do virsh -q -c qemu:///system net-destroy "lab-$lab_name-$n" >/dev/null; done
}
phase host-reboot host_reboot
expect "status after a reboot" '^stopped: .*networks inactive' "${lab[@]}" status -l "$lab_file"
phase_saying start-after-reboot '^lab ocata-deb started \(booted: .*started: ' "${lab[@]}" start -l "$lab_file"
phase verify-after-reboot "${lab[@]}" verify -l "$lab_file"

phase down "${lab[@]}" down -l "$lab_file"
left=$(lab_objects "$lab_name")
[ -z "$left" ] || { echo "libvirt still holds objects of the lab: $left" >&2; exit 1; }
[ ! -e "$LAB_STATE_DIR/$lab_name" ] || { echo "the state directory $LAB_STATE_DIR/$lab_name is still there" >&2; exit 1; }
echo "e2e: 1 passed, 0 failed"

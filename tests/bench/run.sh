#!/usr/bin/env bash
# Benchmark: `lab` against doing the same by hand, in one run, on one machine, same image.
#
#   sudo tests/bench/run.sh
#
# Prints `FIGURE <name> <seconds>` and `RATIO <name> <value>`:
#   hand_boot_<node>    a guest's own boot-to-SSH time (virsh start -> port 22 answers), by hand
#   hand_total          both nodes by hand with virsh and the seed ISOs, one after the other
#   up_prepare          `lab up` start -> every domain started (pool, image, seeds, overlays, networks)
#   up_ssh_ready        `lab up` start -> every node answers SSH with cloud-init finished
#   boot_<node>         domains started -> that node ready, within `lab up`
#   provision_<node>_<step>, verify, up_total
#   provision_again (idempotent), snapshot_save, reset, down
#   RATIO up_over_boot  up_ssh_ready / the slower node's own boot-to-SSH (orchestration overhead)
#   RATIO hand_over_lab hand_total / up_ssh_ready
# Runs libvirtd in a network namespace of its own, like the end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/../.."

ns=lab-bench-$$
work=$(mktemp -d /var/tmp/lab-bench.XXXXXX)
chmod 0755 "$work"
export LAB_STATE_DIR=$work/state LAB_CACHE_DIR=$work/cache LAB_NETNS=$ns LIBVIRT_DEFAULT_URI=qemu:///system
lab_file=openstack-debian12
lab_name=ocata-deb
[ -x target/debug/lab ] || cargo build --locked --quiet
lab=(timeout 1200 target/debug/lab)
virsh=(virsh -q -c qemu:///system)

now() { date +%s%N; }
secs() { local ms=$(( ($2 - $1) / 1000000 )); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }
figure() { echo "FIGURE $1 $2"; }
ratio() { awk -v a="$2" -v b="$3" -v n="$1" 'BEGIN { printf "RATIO %s %.2f\n", n, a / b }'; }

cleanup() {
  local status=$?
  "${lab[@]}" down -l "$lab_file" >/dev/null 2>&1 || true
  tests/e2e/libvirtd.sh stop "$ns" "$work/run" || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

tests/e2e/libvirtd.sh start "$ns" "$work/run"
image=$(LAB=target/debug/lab tests/e2e/build-image.sh --full | awk '$1 == "IMAGE" {print $2}')
"${lab[@]}" image import debian12 "$image" >/dev/null
"${lab[@]}" plan -l "$lab_file" --accel tcg --out "$work/plan" --json > "$work/plan.json"

wait_ssh() { # wait_ssh IP: until port 22 answers inside the namespace (bounded: 600 s)
  for _ in $(seq 1 1200); do
    ip netns exec "$ns" timeout 1 bash -c "exec 3<>/dev/tcp/$1/22" 2>/dev/null && return 0
    sleep 0.5
  done
  echo "no ssh on $1" >&2
  return 1
}

by_hand() { # the same two VMs with virsh and the plan's files, one after the other
  local pool=lab-$lab_name dir=/var/lib/libvirt/images/lab-$lab_name
  for net in "$work"/plan/networks/*.xml; do "${virsh[@]}" net-define "$net" >/dev/null; done
  for net in external internal; do "${virsh[@]}" net-start "lab-$lab_name-$net" >/dev/null; done
  "${virsh[@]}" pool-create-as "$pool" dir --target "$dir" --build >/dev/null 2>&1 || "${virsh[@]}" pool-create-as "$pool" dir --target "$dir"
  "${virsh[@]}" vol-create-as "$pool" "image-debian12.qcow2" "$(stat -c %s "$image")" --format raw >/dev/null
  "${virsh[@]}" vol-upload --pool "$pool" "image-debian12.qcow2" "$image"
  for node in controller compute1; do
    local size ip
    size=$(stat -c %s "$work/plan/nodes/$node/seed.iso")
    "${virsh[@]}" vol-create-as "$pool" "$node-seed.iso" "$size" --format raw >/dev/null
    "${virsh[@]}" vol-upload --pool "$pool" "$node-seed.iso" "$work/plan/nodes/$node/seed.iso"
    "${virsh[@]}" vol-create "$pool" "$work/plan/nodes/$node/overlay-volume.xml" >/dev/null
    "${virsh[@]}" define "$work/plan/nodes/$node/domain.xml" >/dev/null
    ip=$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print([n for n in p["nodes"] if n["name"]==sys.argv[2]][0]["nics"][0]["address"])' "$work/plan.json" "$node")
    local t0
    t0=$(now)
    "${virsh[@]}" start "lab-$lab_name-$node" >/dev/null
    wait_ssh "$ip"
    figure "hand_boot_$node" "$(secs "$t0" "$(now)")"
  done
}

teardown_by_hand() {
  for node in controller compute1; do
    "${virsh[@]}" destroy "lab-$lab_name-$node" >/dev/null 2>&1 || true
    "${virsh[@]}" undefine "lab-$lab_name-$node" >/dev/null
  done
  for net in external internal; do
    "${virsh[@]}" net-destroy "lab-$lab_name-$net" >/dev/null
    "${virsh[@]}" net-undefine "lab-$lab_name-$net" >/dev/null
  done
  for vol in $("${virsh[@]}" vol-list "lab-$lab_name" | awk '{print $1}'); do
    "${virsh[@]}" vol-delete --pool "lab-$lab_name" "$vol" >/dev/null
  done
  "${virsh[@]}" pool-destroy "lab-$lab_name" >/dev/null
}

t0=$(now)
by_hand | tee "$work/hand.txt"
hand_total=$(secs "$t0" "$(now)")
figure hand_total "$hand_total"
teardown_by_hand

# lab up, every stderr line stamped with the seconds since the start.
t0=$(now)
"${lab[@]}" up -l "$lab_file" 2>&1 >/dev/null | while IFS= read -r line; do
  printf '%s %s\n' "$(secs "$t0" "$(now)")" "$line"
done > "$work/up.txt"
up_total=$(secs "$t0" "$(now)")
# Progress lines on a pipe: HH:MM:SS KIND NAME ACTION SECONDS (steps: HH:MM:SS NODE STEP
# OUTCOME SECONDS), after our own stamp in $1.
prepare=$(awk '$3 == "domain" && $5 == "started" {t = $1} END {print t}' "$work/up.txt")
ssh_ready=$(awk '$3 == "node" && $5 == "ready" {t = $1} END {print t}' "$work/up.txt")
figure up_prepare "$prepare"
figure up_ssh_ready "$ssh_ready"
awk '$3 == "probe" && $6 == "done" {sub(/s$/, "", $7); print "FIGURE qemu_probe", $7}' "$work/up.txt"
awk '$3 == "node" && $5 == "ready" {sub(/s$/, "", $6); print "FIGURE boot_" $4, $6}' "$work/up.txt"
awk 'NF == 6 && ($5 == "ok" || $5 == "changed") && $3 != "domain" && $3 != "network" && $3 != "pool" && $3 != "volume" {sub(/s$/, "", $6); print "FIGURE provision_" $3 "_" $4, $6}' "$work/up.txt"
last_step=$(awk 'NF == 6 && ($5 == "ok" || $5 == "changed") && $3 != "domain" && $3 != "network" {t = $1} END {print t}' "$work/up.txt")
awk -v a="$up_total" -v b="$last_step" 'BEGIN { printf "FIGURE verify %.3f\n", a - b }'
figure up_total "$up_total"

timed() { local name=$1 t; shift; t=$(now); "$@" >/dev/null 2>&1; figure "$name" "$(secs "$t" "$(now)")"; }
timed provision_again "${lab[@]}" provision -l "$lab_file"
timed snapshot_save "${lab[@]}" snapshot save bench -l "$lab_file"
timed reset "${lab[@]}" reset bench -l "$lab_file"
timed down "${lab[@]}" down -l "$lab_file"

slower=$(awk '$1 == "FIGURE" && $2 ~ /^hand_boot_/ {if ($3 > m) m = $3} END {print m}' "$work/hand.txt")
ratio up_over_boot "$ssh_ready" "$slower"
ratio hand_over_lab "$hand_total" "$ssh_ready"

#!/usr/bin/env bash
# Benchmark of issue 11: `lab` against the same boot and services done by hand, in the same
# run, on one machine, with the same image (the cached offline debian12 one: never rebuilt).
#
#   flock /tmp/lab-libvirt.lock tests/bench/run.sh        (root; RUNS=1 for a quick try;
#                                                         BENCH_LOG=FILE keeps the whole log;
#                                                         BENCH_IMAGE=FILE another debian12 image;
#                                                         BENCH_PROFILE=release: the optimized
#                                                         build users install, built here)
#
# Each run starts a fresh private libvirtd in a network namespace (tests/e2e/libvirtd.sh),
# brings the lab up with `lab`, times verify, a second provision, reset (then verify again),
# stop and start (through verify) and down, then does the same by hand: both guests started
# at once with virsh, and over ssh the controller's services and both nodes' chrony with the
# guide's plain commands, with the config files `lab plan --out` wrote (its provision.sh).
# Nothing of the lab is left in libvirt between runs.
#
# Prints, over RUNS runs (default 3), the median then min and max of each:
#   RATIO up_over_hand          `lab up` (start -> verified lab) / (hand_boot + hand_services)
#   RATIO provision_over_hand   lab's provisioning (last node ready -> last step) / hand_services
#   RATIO boot_over_hand        lab's boot (first domain start -> every node ready) / hand_boot
#   FIGURE before_first_domain  `lab up` start -> first domain started, on a fresh libvirtd
#   FIGURE before_first_domain_image   its part streaming the image into the pool
#   FIGURE provision_again_ready, provision_again_checks   its parts: every node reached over
#                               SSH, then the rest (uploads, each node's checks, all ok)
#   FIGURE reset, provision_again, verify, down, up, lab_boot, lab_provision   seconds
#   (a `lab verify` failing right after the reset, or any step failing, ends the bench: exit 1)
#   FIGURE stop                 `lab stop` (every node's memory saved)
#   FIGURE start                `lab start` of the stopped lab through a passing `lab verify`
#   FIGURE lab_rss_mib          peak RSS of `lab up` (GNU time's %M)
#   FIGURE hand_boot            both guests started at once -> cloud-init done on both
#   FIGURE hand_services        the controller's services and both nodes' chrony, by hand
#   FIGURE hand_total           hand_boot + hand_services
#   FIGURE lab_step_<node>_<step>, hand_<piece>     the parts, for finding what dominates
set -euo pipefail
cd "$(dirname "$0")/../.."

runs=${RUNS:-3}
ns=lab-bench-$$
work=$(mktemp -d /var/tmp/lab-bench.XXXXXX)
chmod 0755 "$work"
export LAB_STATE_DIR=$work/state LAB_CACHE_DIR=$work/cache LAB_NETNS=$ns LIBVIRT_DEFAULT_URI=qemu:///system
lab_file=openstack-debian12
lab_name=ocata-deb
nodes=(controller compute1)
profile=${BENCH_PROFILE:-debug}
case $profile in
  debug) cargo build --locked --quiet ;;
  release) cargo build --release --locked --quiet ;;
  *) echo "BENCH_PROFILE is debug or release, not $profile" >&2; exit 2 ;;
esac
bin=target/$profile/lab
lab=(timeout 2400 "$bin")  # under load (other guests, compilers) up took 20 min
virsh=(virsh -q -c qemu:///system)
hand=$work/hand          # the plan's files, the lab user's key and known_hosts, for the hand runs
figures=$work/figures    # "NAME VALUE" per run

now() { date +%s%N; }
secs() { local ms=$(( ($2 - $1) / 1000000 )); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }
record() { echo "$1 $2" >>"$figures"; echo "  $1 $2" >&2; }
timed() { # timed NAME CMD...: runs CMD (output to the run's log), records its seconds
  local name=$1 t
  shift
  t=$(now)
  "$@" >>"$work/log" 2>&1
  record "$name" "$(secs "$t" "$(now)")"
}
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }

cleanup() {
  local status=$?
  "${lab[@]}" down -l "$lab_file" >/dev/null 2>&1 || true
  hand_teardown >/dev/null 2>&1 || true
  tests/e2e/libvirtd.sh stop "$ns" "$work/run" || true
  [ "$status" = 0 ] || { echo "bench failed; last lines of its log:" >&2; tail -20 "$work/log" >&2 || true; }
  [ -z "${BENCH_LOG:-}" ] || cp "$work/log" "$BENCH_LOG" || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

cached_image() { # the cached full debian12 image of this recipe (or BENCH_IMAGE); never built
  local hash dir=${LAB_E2E_IMAGE_CACHE:-/var/cache/lab-e2e}
  hash=$("$bin" image recipe-hash debian12 --full)
  image=${BENCH_IMAGE:-$dir/debian12-full-$hash.qcow2}
  if [ -n "${BENCH_IMAGE:-}" ]; then
    echo "image: $image (BENCH_IMAGE, recipe $(cat "$image.recipe" 2>/dev/null || echo unknown); this checkout's is $hash)"
  elif [ ! -f "$image" ] || [ "$(cat "$image.recipe" 2>/dev/null)" != "$hash" ]; then
    echo "no cached image $image: build it first (tests/e2e/build-image.sh --full, 30 min)" >&2
    exit 1
  fi
  "${lab[@]}" image import debian12 "$image" >>"$work/log" 2>&1
}

# ---- lab ------------------------------------------------------------------------------

# stamped OUT CMD...: runs CMD (a `lab --json` command), its events in OUT each stamped with
# the seconds since CMD began, {"t": seconds, "e": event}; other lines go to the run's log,
# CMD's own output (its result, or its error) last, where a failure's tail shows it.
# Returns CMD's status; sets stamped_secs to its whole duration.
stamped() {
  local out=$1 t0 status
  shift
  t0=$(now)
  set +e
  "$@" 2>&1 >"$out.stdout" |
    while IFS= read -r line; do
      case $line in
        '{'*) printf '{"t":%s,"e":%s}\n' "$(secs "$t0" "$(now)")" "$line" ;;
        *) printf '%s\n' "$line" >>"$work/log" ;; # not an event (GNU time's own words)
      esac
    done >"$out"
  status=${PIPESTATUS[0]}
  set -e
  stamped_secs=$(secs "$t0" "$(now)")
  cat "$out" "$out.stdout" >>"$work/log"
  return "$status"
}

lab_up() { # `lab --json up`, each event stamped with the seconds since its start; peak RSS
  stamped "$work/up.jsonl" /usr/bin/time -f %M -o "$work/up.rss" "${lab[@]}" --json up -l "$lab_file" \
    || { echo "lab up failed ($?)" >&2; return 1; }
  record up "$stamped_secs"
  record lab_rss_mib "$(calc "$(tail -1 "$work/up.rss") / 1024")"
  lab_up_figures "$work/up.jsonl"
}

# lab_up_figures FILE: the figures of `up` from its stamped events, one JSON object a line:
# {"t": seconds since up began, "e": the event as `lab --json` writes it}.
lab_up_figures() {
  local up=$1 first_started first_start ready last_step
  # (jq -n with inputs: whole streams, never cut by `head`; "" when nothing matched.)
  q() { jq -rn "[inputs | $1] | $2 // \"\"" "$up"; }
  local started='select(.e.kind == "domain" and .e.action == "started")'
  local step='select(.e.kind == "step" and (.e.outcome == "ok" or .e.outcome == "changed"))'
  first_started=$(q "$started | .t" first)
  first_start=$(q "$started | .t - .e.elapsed" first)
  ready=$(q 'select(.e.kind == "node" and .e.action == "ready") | .t' last)
  last_step=$(q "$step | .t" last)
  for v in first_started first_start ready last_step; do
    [ -n "${!v}" ] || { echo "bench: no $v in the events of lab up ($up)" >&2; return 1; }
  done
  record before_first_domain "$first_started"
  # Its largest part on a fresh pool: the image streamed into it (its volume's final event).
  local image='select(.e.kind == "volume" and (.e.name | test("^image-[^.]+[.]qcow2$")))'
  image=$(q "$image | select(.e.action == \"created\" or .e.action == \"copied\") | .e.elapsed" first)
  [ -z "$image" ] || record before_first_domain_image "$image"
  record lab_boot "$(calc "$ready - $first_start")"
  record lab_provision "$(calc "$last_step - $ready")"
  jq -r 'select(.e.kind == "probe" and .e.action == "done") | "lab_qemu_probe \(.e.elapsed)"' "$up" >>"$figures"
  jq -r "$step"' | "lab_step_\(.e.node)_\(.e.step) \(.e.elapsed)"' "$up" >>"$figures"
}

lab_after_up() { # verify, a second provision, a reset and the verify right after it
  timed verify "${lab[@]}" verify -l "$lab_file"
  stamped "$work/provision.jsonl" "${lab[@]}" --json provision -l "$lab_file" \
    || { echo "bench: lab provision failed ($?)" >&2; exit 1; }
  record provision_again "$stamped_secs"
  # Its parts: every node reached over SSH, then each node's checks (all ok).
  local ready
  ready=$(jq -rn '[inputs | select(.e.kind == "node" and .e.action == "ready") | .t] | last // ""' "$work/provision.jsonl")
  [ -n "$ready" ] || { echo "bench: no node ready in the events of lab provision" >&2; exit 1; }
  record provision_again_ready "$ready"
  record provision_again_checks "$(calc "$stamped_secs - $ready")"
  timed snapshot_save "${lab[@]}" snapshot save bench -l "$lab_file"
  timed reset "${lab[@]}" reset bench -l "$lab_file"
  # A verify failing right after the reset is the bench broken, not a figure.
  "${lab[@]}" verify -l "$lab_file" >>"$work/log" 2>&1 \
    || { echo "bench: lab verify failed right after the reset (see $work/log)" >&2; exit 1; }
  timed stop "${lab[@]}" stop -l "$lab_file"
  local t
  t=$(now)
  "${lab[@]}" start -l "$lab_file" >>"$work/log" 2>&1
  "${lab[@]}" verify -l "$lab_file" >>"$work/log" 2>&1
  record start "$(secs "$t" "$(now)")"
}

keep_access() { # the plan's files and the lab user's key, for the hand run (same seed ISOs)
  rm -rf "$hand"
  mkdir -p "$hand"
  "${lab[@]}" plan -l "$lab_file" --out "$hand/plan" >>"$work/log" 2>&1
  cp "$LAB_STATE_DIR/$lab_name/id_ed25519" "$LAB_STATE_DIR/$lab_name/known_hosts" "$hand/"
  "${lab[@]}" ssh-config -l "$lab_file" | sed "s|$LAB_STATE_DIR/$lab_name/|$hand/|" >"$hand/ssh_config"
}

# ---- by hand --------------------------------------------------------------------------

on() { # on NODE: runs stdin as root on NODE, plain ssh inside the namespace
  ip netns exec "$ns" ssh -F "$hand/ssh_config" -o BatchMode=yes -o ConnectTimeout=2 "$1" sudo -n bash -s
}

hand_prepare() { # networks, pool, image, seeds, overlays and domains, as the plan writes them
  local pool=lab-$lab_name dir=/var/lib/libvirt/images/lab-$lab_name net node
  # The serial console log directory the domain XML names (`lab down` removed lab's).
  mkdir -p "/var/log/libvirt/qemu/lab-$lab_name.logs"
  for net in "$hand"/plan/networks/*.xml; do "${virsh[@]}" net-define "$net"; done
  for net in external internal; do "${virsh[@]}" net-start "lab-$lab_name-$net"; done
  "${virsh[@]}" pool-create-as "$pool" dir --target "$dir" --build ||
    "${virsh[@]}" pool-create-as "$pool" dir --target "$dir"
  "${virsh[@]}" vol-create-as "$pool" image-debian12.qcow2 "$(stat -c %s "$image")" --format raw
  "${virsh[@]}" vol-upload --pool "$pool" image-debian12.qcow2 "$image"
  for node in "${nodes[@]}"; do
    "${virsh[@]}" vol-create-as "$pool" "$node-seed.iso" "$(stat -c %s "$hand/plan/nodes/$node/seed.iso")" --format raw
    "${virsh[@]}" vol-upload --pool "$pool" "$node-seed.iso" "$hand/plan/nodes/$node/seed.iso"
    "${virsh[@]}" vol-create "$pool" "$hand/plan/nodes/$node/overlay-volume.xml"
    "${virsh[@]}" define "$hand/plan/nodes/$node/domain.xml"
  done
}

wait_booted() { # wait_booted NODE: until it takes ssh and cloud-init finished (bounded: 900 s)
  local deadline=$((SECONDS + 900))
  until on "$1" <<<'test -f /var/lib/cloud/instance/boot-finished' 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "$1 did not finish booting" >&2; return 1; }
    sleep 0.5
  done
}

hand_boot() { # both guests started at once, then both waited for
  local t0 node pids=()
  t0=$(now)
  for node in "${nodes[@]}"; do "${virsh[@]}" start "lab-$lab_name-$node" >>"$work/log"; done
  for node in "${nodes[@]}"; do
    (wait_booted "$node" && record "hand_boot_$node" "$(secs "$t0" "$(now)")") &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  record hand_boot "$(secs "$t0" "$(now)")"
}

plan_file() { # plan_file NODE STEP NAME: the file lab uploads for STEP, read from the plan's provision.sh
  local text
  text=$(awk -v start="cat > /root/.lab/files/$2/$3 <<'EOF'" '$0 == start {on = 1; next} on && $0 == "EOF" {exit} on {print}' \
    "$hand/plan/nodes/$1/provision.sh")
  [ -n "$text" ] || { echo "bench: no $2/$3 in the plan of $1" >&2; return 1; }
  printf '%s\n' "$text"
}

install_text() { # install_text PATH: a command writing stdin's text to PATH on the node
  printf "cat > %s <<'CONF'\n%s\nCONF\n" "$1" "$(cat)"
}

hand_chrony_controller() {
  {
    plan_file controller chrony chrony.conf | install_text /etc/chrony/chrony.conf
    printf 'systemctl enable chrony\nsystemctl restart chrony\n'
  } | on controller
}

hand_chrony_compute() {
  {
    plan_file compute1 chrony chrony.conf | install_text /etc/chrony/chrony.conf
    printf 'systemctl enable chrony\nsystemctl restart chrony\n'
  } | on compute1
}

hand_sql() {
  {
    plan_file controller sql openstack.cnf | install_text /etc/mysql/mariadb.conf.d/99-openstack.cnf
    printf 'systemctl enable mariadb\nsystemctl restart mariadb\n'
  } | on controller
}

hand_sql_secure() { # mysql_secure_installation's work as SQL, the root password in /root/.my.cnf
  on controller <<'EOF'
mysql <<'SQL'
SET PASSWORD FOR 'root'@'localhost' = PASSWORD('handdbroot1');
DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1'));
DROP DATABASE IF EXISTS test;
DELETE FROM mysql.db WHERE Db = 'test' OR Db LIKE 'test\\_%';
FLUSH PRIVILEGES;
SQL
(umask 077 && printf '[client]\nuser=root\npassword=handdbroot1\n' > /root/.my.cnf)
EOF
}

hand_mq() {
  on controller <<<'systemctl enable rabbitmq-server && systemctl start rabbitmq-server'
}

hand_mq_user() {
  on controller <<'EOF'
echo handrabbit1 | rabbitmqctl -q add_user openstack
rabbitmqctl set_permissions openstack ".*" ".*" ".*"
EOF
}

hand_memcached() {
  on controller <<'EOF'
sed -i -e '/^-l /d' /etc/memcached.conf
echo '-l 127.0.0.1,::1,controller' >> /etc/memcached.conf
systemctl enable memcached
systemctl restart memcached
EOF
}

hand_services() { # as lab orders them: compute's chrony after the controller's, beside the rest
  local t0 piece compute
  t0=$(now)
  timed hand_chrony_controller hand_chrony_controller
  timed hand_chrony_compute hand_chrony_compute &
  compute=$!
  for piece in sql sql_secure mq mq_user memcached; do timed "hand_$piece" "hand_$piece"; done
  wait "$compute"
  record hand_services "$(secs "$t0" "$(now)")"
}

hand_teardown() { # everything hand_prepare made
  local node net vol
  for node in "${nodes[@]}"; do
    "${virsh[@]}" destroy "lab-$lab_name-$node" || true
    "${virsh[@]}" undefine "lab-$lab_name-$node" || true
  done
  for net in external internal; do
    "${virsh[@]}" net-destroy "lab-$lab_name-$net" || true
    "${virsh[@]}" net-undefine "lab-$lab_name-$net" || true
  done
  for vol in $("${virsh[@]}" vol-list "lab-$lab_name" 2>/dev/null | awk '{print $1}'); do
    "${virsh[@]}" vol-delete --pool "lab-$lab_name" "$vol" || true
  done
  "${virsh[@]}" pool-destroy "lab-$lab_name" || true
  rm -rf "/var/log/libvirt/qemu/lab-$lab_name.logs"
}

# ---- runs and summary -----------------------------------------------------------------

nothing_left() {
  local left
  left=$("${virsh[@]}" "list --all --name; net-list --all --name; pool-list --all --name" | grep -E "^lab-$lab_name([-.]|$)" || true)
  [ -z "$left" ] || { echo "left in libvirt after a run: $left" >&2; return 1; }
}

one_run() { # one_run N
  echo "== run $1 of $runs" >&2
  tests/e2e/libvirtd.sh start "$ns" "$work/run" 2>>"$work/log"
  [ -n "${image:-}" ] || cached_image
  lab_up
  lab_after_up
  keep_access
  timed down "${lab[@]}" down -l "$lab_file"
  nothing_left
  hand_prepare >>"$work/log" 2>&1
  hand_boot
  hand_services
  hand_teardown >>"$work/log" 2>&1
  nothing_left
  tests/e2e/libvirtd.sh stop "$ns" "$work/run"
  # The ratios of this run, from its own figures.
  local up boot prov hb hs
  up=$(awk '$1 == "up" {v = $2} END {print v}' "$figures")
  boot=$(awk '$1 == "lab_boot" {v = $2} END {print v}' "$figures")
  prov=$(awk '$1 == "lab_provision" {v = $2} END {print v}' "$figures")
  hb=$(awk '$1 == "hand_boot" {v = $2} END {print v}' "$figures")
  hs=$(awk '$1 == "hand_services" {v = $2} END {print v}' "$figures")
  record hand_total "$(calc "$hb + $hs")"
  record ratio_up_over_hand "$(calc "$up / ($hb + $hs)")"
  record ratio_provision_over_hand "$(calc "$prov / $hs")"
  record ratio_boot_over_hand "$(calc "$boot / $hb")"
}

summary() { # median (then min, max) of every name over the runs; RATIO lines for ratio_*
  sort -k1,1 -k2,2g "$figures" | awk '
    function flush() {
      if (name == "") return
      med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
      kind = "FIGURE"
      if (name ~ /^ratio_/) { kind = "RATIO"; sub(/^ratio_/, "", name) }
      printf "%s %s %.2f (min %.2f, max %.2f, runs %d)\n", kind, name, med, v[1], v[n], n
    }
    $1 != name { flush(); name = $1; n = 0 }
    { v[++n] = $2 }
    END { flush() }' | sort -k1,1r -s
}

: >"$figures"
for run in $(seq 1 "$runs"); do one_run "$run"; done
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), runs $runs, lab: $bin"
summary

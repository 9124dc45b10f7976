# Shared by the end-to-end scripts (sourced, not run): a work directory, a private libvirtd
# inside a network namespace (or the one a caller already started: LAB_E2E_NETNS and
# LAB_E2E_RUN (its run directory, for a restart), so several scripts share one daemon and one
# image), the offline image
# imported into a private cache (or the one LAB_E2E_CACHE_DIR names, imported once), and
# the helpers `phase` and `expect`.
#
#   source tests/e2e/lib.sh; e2e_setup NAME    # sets ns, work, lab_bin=(...), lab=(...)
#                                              # (lab_bin with `timeout`), exports LAB_*
#   e2e_teardown                               # stops what e2e_setup started
# shellcheck shell=bash

e2e_setup() { # e2e_setup NAME
  local name=$1
  work=$(mktemp -d "/var/tmp/lab-$name.XXXXXX")
  chmod 0755 "$work"
  # LAB_E2E_CACHE_DIR: an image cache shared by the scripts of one run (imported once).
  export LAB_STATE_DIR=$work/state LAB_CACHE_DIR=${LAB_E2E_CACHE_DIR:-$work/cache}
  export LIBVIRT_DEFAULT_URI=qemu:///system
  # Always through cargo: a binary older than the sources is rebuilt (a no-op when fresh).
  cargo build --locked --quiet
  lab_bin=(target/debug/lab)
  lab=(timeout 1200 "${lab_bin[@]}")
  # The daemons' run directory (their PID files), for `libvirtd.sh restart`.
  # shellcheck disable=SC2034  # for the scripts that source this file
  daemon_run=${LAB_E2E_RUN:-$work/run}
  if [ -n "${LAB_E2E_NETNS:-}" ]; then
    ns=$LAB_E2E_NETNS
    own_daemon=
  else
    ns=lab-$name-$$
    own_daemon=1
    phase libvirtd tests/e2e/libvirtd.sh start "$ns" "$work/run"
  fi
  export LAB_NETNS=$ns
  local built image
  # (No `tee /dev/stderr` here: reopening stderr truncates a log file it is redirected to.)
  built=$(LAB="target/debug/lab" tests/e2e/build-image.sh --full "${LAB_E2E_IMAGE_CACHE:-/var/cache/lab-e2e}")
  echo "$built"
  image=$(echo "$built" | awk '$1 == "IMAGE" {print $2}')
  if [ "$(cat "$LAB_CACHE_DIR/imported-from" 2>/dev/null)" != "$image" ]; then
    phase import "${lab[@]}" image import debian12 "$image"
    echo "$image" >"$LAB_CACHE_DIR/imported-from"
  fi
}

e2e_teardown() {
  if [ -n "${own_daemon:-}" ]; then
    tests/e2e/libvirtd.sh stop "$ns" "$work/run" || true
  fi
  rm -rf "$work"
}

phase() { # phase NAME CMD...: runs CMD, prints PHASE NAME SECONDS
  local name=$1 start ms
  shift
  start=$(date +%s%N)
  echo "== $name: $*" >&2
  "$@"
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf 'PHASE %s %d.%03d\n' "$name" $((ms / 1000)) $((ms % 1000))
}

phase_saying() { # phase_saying NAME PATTERN CMD...: `phase NAME CMD...`, whose output must match PATTERN
  local name=$1 pattern=$2 log=$work/phase-$1.log
  shift 2
  phase "$name" "$@" >"$log" 2>&1 || { cat "$log" >&2; return 1; }
  cat "$log"
  grep -qE "$pattern" "$log" || { echo "$name: no '$pattern' in its output" >&2; return 1; }
}

expect() { # expect WHAT PATTERN CMD...: CMD's output must match PATTERN
  local what=$1 pattern=$2 out
  shift 2
  out=$("$@" 2>&1) || { echo "$what failed: $out" >&2; return 1; }
  grep -qE "$pattern" <<<"$out" || { echo "$what: no '$pattern' in: $out" >&2; return 1; }
  echo "ok: $what"
}

lab_objects() { # lab_objects LABNAME: every libvirt domain, network and pool (log pool too) of the lab
  # A virsh that fails is no answer: the caller's "nothing left" must not pass on it.
  local all
  all=$(virsh -q -c qemu:///system "list --all --name; net-list --all --name; pool-list --all --name") \
    || { echo "lab_objects: virsh failed: cannot tell what is left" >&2; echo "(virsh failed)"; return 1; }
  grep -E "^lab-$1([-.]|$)" <<<"$all" || true
}

# Remote mode (LAB_E2E_REMOTE=1, issue 13): the netns's libvirtd is "the host", reached only
# through an sshd started in that netns at 198.51.100.2. lab runs in a second network
# namespace ($ns-c: a veth to the host's, 198.51.100.1, and nothing else: no route to the
# guests, none off the machine), through qemu+ssh://root@198.51.100.2/system, in a mount
# namespace of its own where /var/lib/libvirt and /var/log/libvirt are empty and /root is a
# tmpfs holding only the test's ~/.ssh (the host's key in known_hosts, the login key;
# OpenSSH reads the passwd home, not $HOME). Sets remote_ns, lab_bin=(...), lab=(...),
# remote_run=(...) (runs a command as lab's user there) and remote_ssh=(...) (OpenSSH so);
# remote_teardown stops the sshd by its PID and deletes the namespace.
remote_host=198.51.100.2
# remote_reachable SECONDS: waits until the host's sshd accepts a TCP connection from lab's
# namespace, SECONDS at most (a link just brought back up: its carrier and the neighbour's
# address come back a moment later, and a connection meanwhile fails "No route to host").
remote_reachable() {
  for _ in $(seq 1 $(($1 * 10))); do
    ip netns exec "$remote_ns" bash -c "exec 3<>/dev/tcp/$remote_host/22" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$remote_host:22 unreachable from lab's namespace after $1 s" >&2
  return 1
}
remote_setup() {
  local dir=$work/remote
  local ssh=$dir/dot-ssh veth=labr$$
  remote_ns=$ns-c
  mkdir -p "$ssh"
  chmod 0700 "$ssh"
  ssh-keygen -q -t ed25519 -N '' -C host -f "$dir/host_key"
  ssh-keygen -q -t ed25519 -N '' -C lab-e2e -f "$ssh/id_ed25519"
  cp "$ssh/id_ed25519.pub" "$dir/authorized_keys"
  echo "$remote_host $(cat "$dir/host_key.pub")" >"$ssh/known_hosts"
  printf 'Host %s\n  User root\n  IdentityFile /root/.ssh/id_ed25519\n  BatchMode yes\n' \
    "$remote_host" >"$ssh/config"
  cat >"$dir/sshd_config" <<CONF
ListenAddress $remote_host:22
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
AllowTcpForwarding yes
StrictModes no
UsePAM no
PidFile none
CONF
  ip netns add "$remote_ns"
  ip netns exec "$remote_ns" ip link set lo up
  ip link add "$veth" netns "$remote_ns" type veth peer name "${veth}h" netns "$ns"
  ip netns exec "$remote_ns" ip addr add 198.51.100.1/30 dev "$veth"
  ip netns exec "$remote_ns" ip link set "$veth" up
  ip netns exec "$ns" ip addr add "$remote_host/30" dev "${veth}h"
  ip netns exec "$ns" ip link set "${veth}h" up
  # The host's end of the link, for a test that cuts it.
  # shellcheck disable=SC2034  # for the scripts that source this file
  remote_veth=${veth}h
  mkdir -p /run/sshd
  ip netns exec "$ns" /usr/sbin/sshd -D -e -f "$dir/sshd_config" 2>"$dir/sshd.log" &
  remote_sshd=$!
  remote_reachable 5
  unset LAB_NETNS
  export LIBVIRT_DEFAULT_URI="qemu+ssh://root@$remote_host/system"
  local private=(ip netns exec "$remote_ns" unshare -m --propagation private)
  # shellcheck disable=SC2016
  lab_bin=("${private[@]}" sh -c '
    mount -t tmpfs tmpfs /var/lib/libvirt && mount -t tmpfs tmpfs /var/log/libvirt &&
    mount -t tmpfs -o mode=0700 tmpfs /root && cp -a "$0" /root/.ssh && exec "$@"' "$ssh" target/debug/lab)
  lab=(timeout 1200 "${lab_bin[@]}")
  # shellcheck disable=SC2016
  remote_run=("${private[@]}" sh -c '
    mount -t tmpfs -o mode=0700 tmpfs /root && cp -a "$0" /root/.ssh && exec "$@"' "$ssh")
  # shellcheck disable=SC2034  # for the scripts that source this file
  remote_ssh=("${remote_run[@]}" ssh)
}

remote_teardown() {
  if [ -n "${remote_sshd:-}" ]; then
    kill "$remote_sshd" 2>/dev/null || true
    wait "$remote_sshd" 2>/dev/null || true
  fi
  if [ -n "${remote_ns:-}" ]; then
    ip netns del "$remote_ns" 2>/dev/null || true
  fi
}

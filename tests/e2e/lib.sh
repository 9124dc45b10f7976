# Shared by the end-to-end scripts (sourced, not run): a work directory, a private libvirtd
# inside a network namespace (or the one a caller already started: LAB_E2E_NETNS and
# LAB_E2E_RUN, so several scripts share one daemon and one image), the offline image
# imported into a private cache (or the one LAB_E2E_CACHE_DIR names, imported once), and
# the helpers `phase` and `expect`.
#
#   source tests/e2e/lib.sh; e2e_setup NAME    # sets ns, work, lab=(...), exports LAB_*
#   e2e_teardown                               # stops what e2e_setup started
# shellcheck shell=bash

e2e_setup() { # e2e_setup NAME
  local name=$1
  work=$(mktemp -d "/var/tmp/lab-$name.XXXXXX")
  chmod 0755 "$work"
  # LAB_E2E_CACHE_DIR: an image cache shared by the scripts of one run (imported once).
  export LAB_STATE_DIR=$work/state LAB_CACHE_DIR=${LAB_E2E_CACHE_DIR:-$work/cache}
  export LIBVIRT_DEFAULT_URI=qemu:///system
  [ -x target/debug/lab ] || cargo build --locked --quiet
  lab=(timeout 1200 target/debug/lab)
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

expect() { # expect WHAT PATTERN CMD...: CMD's output must match PATTERN
  local what=$1 pattern=$2 out
  shift 2
  out=$("$@" 2>&1) || { echo "$what failed: $out" >&2; return 1; }
  grep -qE "$pattern" <<<"$out" || { echo "$what: no '$pattern' in: $out" >&2; return 1; }
  echo "ok: $what"
}

lab_objects() { # lab_objects LABNAME: every libvirt domain, network and pool of the lab
  virsh -q -c qemu:///system "list --all --name; net-list --all --name; pool-list --all --name" \
    | grep -E "^lab-$1(-|$)" || true
}

#!/usr/bin/env bash
# Builds the debian12 image into a cache directory keyed by its recipe hash, or reuses the
# image already there when the recipe (package lists, dropped files, build code) is unchanged.
#
#   tests/e2e/build-image.sh [--full] [CACHE_DIR]      (as root; CACHE_DIR default /var/cache/lab-e2e)
#
# Host packages: mmdebstrap fdisk mount util-linux e2fsprogs qemu-utils (see src/build/).
# LAB is the `lab` command to use (default: this checkout through cargo). It needs
# `lab image recipe-hash debian12 [--full]` and `lab image build debian12 [--full] --out FILE`.
# Prints `IMAGE <path>` and `PHASE build <seconds>` (0 when the cached image was reused).
set -euo pipefail
cd "$(dirname "$0")/../.."

full=()
variant=base
if [ "${1:-}" = "--full" ]; then
  full=(--full)
  variant=full
  shift
fi
cache=${1:-/var/cache/lab-e2e}
if [ -n "${LAB:-}" ]; then
  read -r -a lab <<<"$LAB"
else
  cargo build --release --quiet --locked
  lab=(target/release/lab)
fi

hash=$("${lab[@]}" image recipe-hash debian12 "${full[@]}")
image="$cache/debian12-$variant-$hash.qcow2"
mkdir -p "$cache"
chmod 0755 "$cache"   # libvirt-qemu must traverse it to read the image

start=$(date +%s)
if [ -f "$image" ] && [ "$(cat "$image.recipe" 2>/dev/null)" = "$hash" ]; then
  echo "reusing $image (recipe $hash)" >&2
  seconds=0
else
  "${lab[@]}" image build debian12 "${full[@]}" --out "$image"
  seconds=$(( $(date +%s) - start ))
  # Older builds of this variant are stale now.
  find "$cache" -maxdepth 1 -name "debian12-$variant-*.qcow2*" ! -name "debian12-$variant-$hash.qcow2*" -delete
fi
echo "IMAGE $image"
echo "PHASE build $seconds"

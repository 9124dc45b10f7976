#!/usr/bin/env bash
# Installs the Debian 12 host packages `lab` and its tests use (as root), skipping the work
# when they are all there. Used by .ci/run and scripts/lab-up.sh.
set -euo pipefail

packages=(
  libvirt-dev pkg-config          # the virt crate links libvirt
  libvirt-clients                 # virt-xml-validate: libvirt's own schemas; virsh
  libxml2-utils                   # xmllint, which virt-xml-validate runs
  tini                            # subreaper the private libvirtd/virtlogd run under
  libvirt-daemon-system           # libvirtd + virtlogd
  qemu-system-x86 ipxe-qemu       # the guests (kvm or TCG); virtio NIC option ROM
  dnsmasq-base                    # libvirt's network driver expects it, even with dns off
  qemu-utils                      # qemu-img: cache tests, image builds (Debian's, see below)
  mmdebstrap fdisk e2fsprogs      # lab image build debian12
  xorriso                         # reads the seed ISO back, independently of our writer
  cloud-init                      # cloud-init schema / devel net-convert (made inert below)
  shellcheck                      # checks every rendered provisioning script
  gnupg                           # gpg: the vendored Cloud SIG key's fingerprint
  openssh-client                  # ssh -G and ssh-keygen -F read our ssh-config; lab ssh
  openssh-server iproute2         # a real sshd (in a netns too) for the ssh client tests
  python3-venv                    # tests/e2e/ansible.sh: ansible-core from PyPI in a venv
  time                            # GNU time: tests/bench/run.sh reads `lab up`'s peak RSS
  jq                              # tests/bench/run.sh reads `lab --json up`'s events
  procps                          # pgrep, ps: the e2e tests look for QEMU processes and daemon children
  util-linux                      # losetup, nsenter, fallocate: faults.sh's small filesystems
)
installed=$(dpkg-query -W -f='${Status}\n' "${packages[@]}" 2>/dev/null | grep -c 'install ok installed' || true)
if [ "$installed" -eq "${#packages[@]}" ]; then
  echo "all ${#packages[@]} host packages present"
else
  # cloud-init must never act on this host: disable it before it is installed.
  mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # The machine's preinstalled qemu-utils is a backport that qemu-system-x86 cannot go with:
  # name Debian 12's own in the same command (installing qemu-system-x86 alone removes it).
  apt-get install -y -q --no-install-recommends --allow-downgrades \
    "${packages[@]/#qemu-utils/qemu-utils/bookworm}"
fi
touch /etc/cloud/cloud-init.disabled

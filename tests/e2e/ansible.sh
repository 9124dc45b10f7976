#!/usr/bin/env bash
# Proves that Ansible, as users run it, takes `lab inventory` as it is: the inventory parses
# with no warning about group or host names, every node answers `ping`, and `become` makes
# root. Host keys stay pinned: StrictHostKeyChecking stays on (the inventory's
# UserKnownHostsFile is the lab's known_hosts) and BatchMode makes any prompt a failure.
#
#   tests/e2e/ansible.sh INVENTORY NETNS
#   tests/e2e/ansible.sh INVENTORY -- PREFIX...
#
#   INVENTORY  a file written by `lab inventory` (its key and known_hosts files must exist)
#   NETNS      the network namespace the nodes are reachable from (the one LAB_NETNS names;
#              tests/e2e/libvirtd.sh creates it); Ansible runs inside it (ip netns exec)
#   PREFIX     or the command that runs Ansible where lab's user runs it (tests/e2e/lib.sh's
#              remote_run: lab's namespace, its ~/.ssh; the inventory's ProxyJump does the rest)
#
# The nodes need Python 3.8 or later (ansible-core 2.19): the debian12 lab has it; CentOS 7's
# Python 2.7 is too old for this Ansible. Run as root (ip netns exec). ansible-core 2.19.x comes from PyPI into a venv under /var/tmp
# (created with Debian's python3 and python3-venv; kept between runs, so only the first run
# downloads). Needs: python3-venv, iproute2, openssh-client (scripts/host-packages.sh).
# Exit status 0 when all holds; prints `PHASE ansible <seconds>` at the end.
set -euo pipefail

inv=${1:?usage: tests/e2e/ansible.sh INVENTORY NETNS|-- PREFIX...}
ns=${2:?usage: tests/e2e/ansible.sh INVENTORY NETNS|-- PREFIX...}
shift 2
if [ "$ns" = -- ]; then
  where=("$@")
else
  where=(ip netns exec "$ns")
fi
series=2.19
venv=/var/tmp/lab-ansible-core-$series
start=$SECONDS

fail() { echo "ansible.sh: $*" >&2; exit 1; }

[ -r "$inv" ] || fail "cannot read the inventory $inv: write it with \`lab inventory > FILE\`"
inv=$(realpath "$inv")
[ "$ns" = -- ] || ip netns list | grep -qw -- "$ns" || fail "no network namespace $ns: give the one the lab's libvirtd runs in"
grep -q 'StrictHostKeyChecking=yes' "$inv" || fail "$inv does not pin host keys (no StrictHostKeyChecking=yes)"

# ansible-core 2.19.x in a venv of Debian's python3, reused while it holds a 2.19 release.
installed() { "$venv/bin/ansible" --version 2>/dev/null | sed -n 1p || true; }
if ! installed | grep -q "core $series\."; then
  if ! /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null; then
    fail "python3-venv is missing: bash scripts/host-packages.sh installs it"
  fi
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "ansible-core>=$series,<2.20"
fi
installed

# Ansible's own settings: nothing from the caller's environment or an ansible.cfg nearby.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
while read -r var; do unset "$var"; done < <(env | sed -n 's/^\(ANSIBLE_[A-Z_]*\)=.*/\1/p')
export ANSIBLE_CONFIG=$work/ansible.cfg ANSIBLE_LOCAL_TEMP=$work/tmp ANSIBLE_NOCOLOR=1
export ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_FORCE_COLOR=0
# No control master left running after us; a host-key or password prompt fails at once.
export ANSIBLE_SSH_ARGS='-o ControlMaster=no -o BatchMode=yes'
printf '[defaults]\n' > "$ANSIBLE_CONFIG"

# run NAME CMD...: runs CMD where the nodes are reachable, keeps its output in $work/NAME.out, shows it, and
# fails on its status or on any warning about group or host names.
run() {
  local name=$1; shift
  echo "+ $*"
  if ! "${where[@]}" "$@" >"$work/$name.out" 2>&1; then
    cat "$work/$name.out"
    fail "$name failed"
  fi
  cat "$work/$name.out"
  if grep -i 'warning' "$work/$name.out" | grep -Eiq 'group|same name'; then
    fail "$name warned about group or host names (above)"
  fi
}

# The inventory alone: every host in a group, no group named like a host.
run inventory "$venv/bin/ansible-inventory" -i "$inv" --list
"$venv/bin/python" - "$work/inventory.out" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
inv = json.loads(text[text.index("{"):])
hosts = set(inv["_meta"]["hostvars"])
groups = {g for g in inv if g not in ("_meta", "all")}
clash = hosts & groups
assert hosts, "no hosts in the inventory"
assert not clash, f"groups named like hosts: {sorted(clash)}"
grouped = {h for g in groups for h in inv[g].get("hosts", [])}
assert grouped == hosts, f"hosts in no group: {sorted(hosts - grouped)}"
print(f"inventory: hosts {sorted(hosts)}, groups {sorted(groups)}")
EOF

run ping "$venv/bin/ansible" all -i "$inv" -m ping
hosts=$("${where[@]}" "$venv/bin/ansible" all -i "$inv" --list-hosts | tail -n +2 | wc -l)
pongs=$(grep -c '"ping": "pong"' "$work/ping.out" || true)
[ "$pongs" -eq "$hosts" ] || fail "$pongs of $hosts hosts answered ping"

run become "$venv/bin/ansible" all -i "$inv" -b -m command -a id
roots=$(grep -c '^uid=0(root)' "$work/become.out" || true)
[ "$roots" -eq "$hosts" ] || fail "become made root on $roots of $hosts hosts"

echo "ansible: $hosts hosts answer ping and become root, no group/host name warning"
echo "PHASE ansible $((SECONDS - start))"

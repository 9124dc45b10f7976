//! The cloud-init NoCloud seed of a node: meta-data, user-data, network-config (v1).
//!
//! YAML is written by hand, line by line, so the output is deterministic and easy to read in
//! golden files. Every string that comes from the lab is emitted as a double-quoted scalar
//! (JSON string syntax, which YAML accepts), and multi-line text as a literal block scalar.

use std::fmt::Write as _;

use super::RenderContext;
use crate::image::Profile;
use crate::model::{Lab, NetKind, Network, Nic, Node};
use crate::names;
use crate::provision::centos7;

/// The three files of a NoCloud seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// `meta-data`: instance-id and local-hostname.
    pub meta_data: String,
    /// `user-data`: a `#cloud-config` document.
    pub user_data: String,
    /// `network-config`: network config version 1, without a top-level `network:` key.
    pub network_config: String,
}

/// Renders the whole NoCloud seed of `node`.
pub fn seed(lab: &Lab, node: &Node, ctx: &RenderContext) -> Seed {
    Seed {
        meta_data: meta_data(lab, node, ctx),
        user_data: user_data(lab, node, ctx),
        network_config: network_config(lab, node),
    }
}

/// meta-data: the instance-id (new per node generation, so a rebuilt node is a first boot
/// again) and the local hostname.
pub fn meta_data(lab: &Lab, node: &Node, ctx: &RenderContext) -> String {
    let id = names::instance_id(&lab.name, &node.name, ctx.generation(&node.name));
    format!(
        "instance-id: {}\nlocal-hostname: {}\n",
        quote(&id),
        quote(&node.name)
    )
}

/// The `fqdn` key. cloud-init's rhel distro names the host by its fqdn when it has one, and
/// 19.4 cannot be told otherwise; the guide's hosts are called `controller`, so on CentOS 7
/// the key is the short name (`hostname -f` still gives the fqdn through /etc/hosts).
fn fqdn(lab: &Lab, node: &Node) -> String {
    match lab.image.profile {
        Profile::Centos7Ocata => node.name.clone(),
        Profile::Debian12 => lab.fqdn(node),
    }
}

/// user-data: `#cloud-config` for hostname, /etc/hosts, the lab user, SSH keys, locale and,
/// on CentOS 7, the switch from NetworkManager to the legacy `network` service.
pub fn user_data(lab: &Lab, node: &Node, ctx: &RenderContext) -> String {
    let profile = lab.image.profile;
    let mut y = String::from("#cloud-config\n");
    let _ = writeln!(y, "hostname: {}", quote(&node.name));
    let _ = writeln!(y, "fqdn: {}", quote(&fqdn(lab, node)));
    let _ = writeln!(y, "locale: {}", quote(locale(profile)));
    y.push_str(&users(lab, ctx));
    y.push_str("disable_root: true\nssh_pwauth: false\n");
    y.push_str(&ssh_keys(node, ctx));
    y.push_str("manage_etc_hosts: false\n");
    y.push_str(&write_files(lab));
    y.push_str(&runcmd(profile));
    y
}

/// The locale each guest gets.
///
/// Debian 12 ships C.UTF-8 in libc-bin, and its cloud-init locale module fails without an
/// explicit locale on our minimal images. CentOS 7's glibc 2.17 has no C.UTF-8: the locale
/// only reached upstream glibc in 2.35 and Red Hat first shipped it (as C.utf8) in RHEL 8, so
/// on CentOS 7 `LANG=C.UTF-8` makes every shell warn "setlocale: LC_CTYPE: cannot change
/// locale". en_US.UTF-8 is in glibc-common's locale-archive on every CentOS 7 image.
/// (Checked against glibc's NEWS and Red Hat's documentation, not against a booted guest.)
pub fn locale(profile: Profile) -> &'static str {
    match profile {
        Profile::Centos7Ocata => "en_US.UTF-8",
        Profile::Debian12 => "C.UTF-8",
    }
}

/// The `users:` section: only the lab user (no distribution default user).
fn users(lab: &Lab, ctx: &RenderContext) -> String {
    let key = &ctx.secrets.user_key.public_openssh;
    format!(
        "users:\n  - name: {}\n    sudo: {}\n    shell: /bin/bash\n    lock_passwd: true\n    \
         ssh_authorized_keys:\n      - {}\n",
        quote(&lab.user),
        quote("ALL=(ALL) NOPASSWD:ALL"),
        quote(key)
    )
}

/// The node's SSH host key, injected so `lab` can pin it. When `ssh_keys` is given, cc_ssh
/// generates no key at all and ignores `ssh_genkeytypes`; the schema refuses an empty list
/// (minItems 1), so the list names ed25519, the type that is already written.
fn ssh_keys(node: &Node, ctx: &RenderContext) -> String {
    let key = ctx
        .secrets
        .host_keys
        .get(&node.name)
        .expect("lab secrets hold a host key for every node");
    format!(
        "ssh_deletekeys: true\nssh_genkeytypes: [ed25519]\nssh_keys:\n  ed25519_private: {}  \
         ed25519_public: {}\n",
        block(&key.private_openssh, 4),
        quote(&key.public_openssh)
    )
}

/// The static /etc/hosts of every node: localhost and every node on its internal address.
/// No `127.0.1.1` line: the node's own name must resolve to its management address.
pub fn etc_hosts(lab: &Lab) -> String {
    let mut hosts = String::from(
        "127.0.0.1 localhost localhost.localdomain\n\
         ::1 localhost localhost.localdomain ip6-localhost ip6-loopback\n",
    );
    for n in &lab.nodes {
        let addr = lab.internal_address(n);
        let _ = writeln!(hosts, "{addr} {} {}", lab.fqdn(n), n.name);
    }
    hosts
}

fn write_files(lab: &Lab) -> String {
    format!(
        "write_files:\n  - path: /etc/hosts\n    owner: root:root\n    permissions: \"0644\"\n    \
         content: {}",
        block(&etc_hosts(lab), 6)
    )
}

/// CentOS 7 only: hand the interfaces to the legacy `network` service. The RHEL cloud-init
/// package leaves NM_CONTROLLED out of the ifcfg files it writes, so it is appended here
/// (to the files that exist: an unmatched glob stays a literal word in sh). NetworkManager
/// is disabled, not removed: cloud-final restarts it on builds older than el7_9.5 and fails
/// when it is absent. The GenericCloud image may have no NetworkManager at all, so each
/// command on it runs only when its unit file is installed (the provisioning step's guard,
/// [`centos7::unit_installed`]), and NetworkManager-wait-online goes too, so no boot waits
/// for a network NetworkManager no longer manages.
fn runcmd(profile: Profile) -> String {
    if profile != Profile::Centos7Ocata {
        return String::new();
    }
    let unit = centos7::unit_installed;
    let cmds = [
        "for f in /etc/sysconfig/network-scripts/ifcfg-eth*; do [ -e \"$f\" ] || continue; \
         grep -q '^NM_CONTROLLED=no' \"$f\" || echo NM_CONTROLLED=no >> \"$f\"; done"
            .to_string(),
        format!(
            "if {}; then systemctl disable --now NetworkManager; fi",
            unit("NetworkManager.service")
        ),
        format!(
            "if {}; then systemctl disable NetworkManager-wait-online; fi",
            unit("NetworkManager-wait-online.service")
        ),
        "systemctl enable network".to_string(),
        "systemctl restart network".to_string(),
    ];
    let mut y = String::from("runcmd:\n");
    for c in cmds {
        let _ = writeln!(y, "  - {}", quote(&c));
    }
    y
}

/// network-config version 1 (EL7's cloud-init 19.4 handles v1 reliably, v2 has bugs there):
/// one physical interface per NIC, matched by MAC, static addresses, no DHCP. The default
/// route (and the resolver, when libvirt serves DNS) only on the nat network's NIC.
///
/// No top-level `network:` key: NoCloud hands the file as it is to cloud-init's parser, which
/// reads `version` at the top (only `cloud-init devel net-convert` also accepts the wrapper).
pub fn network_config(lab: &Lab, node: &Node) -> String {
    let mut y = String::from("version: 1\nconfig:\n");
    for (i, nic) in node.nics.iter().enumerate() {
        let net = lab
            .network(&nic.network)
            .expect("validated nic is on a lab network");
        y.push_str(&physical(i, nic, net));
    }
    y
}

fn physical(index: usize, nic: &Nic, net: &Network) -> String {
    let mut y = format!(
        "  - type: physical\n    name: eth{index}\n    mac_address: {}\n    subnets:\n      \
         - type: static\n        address: {}/{}\n",
        quote(&nic.mac.to_string()),
        nic.address,
        net.cidr.prefix
    );
    if let (NetKind::Nat, Some(gw)) = (net.kind, net.gateway) {
        let _ = writeln!(y, "        gateway: {gw}");
        if net.dns {
            let _ = writeln!(y, "        dns_nameservers:\n          - {gw}");
        }
    }
    y
}

/// A YAML double-quoted scalar. JSON string syntax is a subset of YAML's double-quoted style.
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("strings always serialize")
}

/// A YAML literal block scalar of `text`, its lines indented by `indent` spaces, ending with
/// a newline. The chomping indicator keeps the text's trailing newlines exactly. The text
/// must not start with a space (that would need an indentation indicator); ours never does.
fn block(text: &str, indent: usize) -> String {
    let body = text.trim_end_matches('\n');
    let chomp = match text.len() - body.len() {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut y = format!("|{chomp}\n");
    for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
        if !line.is_empty() {
            y.push_str(&" ".repeat(indent));
        }
        y.push_str(line);
        y.push('\n');
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_scalars_keep_trailing_newlines() {
        assert_eq!(block("a\nb\n", 2), "|\n  a\n  b\n");
        assert_eq!(block("a", 2), "|-\n  a\n");
        assert_eq!(block("a\n\n", 2), "|+\n  a\n\n");
    }

    #[test]
    fn quoting_escapes_yaml_specials() {
        assert_eq!(quote("a: b # c"), "\"a: b # c\"");
        assert_eq!(quote("x\"y"), "\"x\\\"y\"");
    }
}

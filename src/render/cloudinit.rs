//! The cloud-init NoCloud seed of a node: meta-data, user-data, network-config (v1).
//!
//! Each file is a typed value serialized by serde-saphyr, so the output is deterministic and
//! easy to read in golden files. Every string that comes from the lab is a double-quoted
//! scalar (`DoubleQuoted`), and multi-line text a literal block scalar (`LitString`); lists are
//! indented under their key.

use std::fmt::Write as _;

use serde::Serialize;
use serde_saphyr::{DoubleQuoted, FlowSeq, LitString};

use super::RenderContext;
use crate::image::Profile;
use crate::model::{Lab, NetKind, Network, Nic, Node};
use crate::names;
use crate::provision::centos7;
use crate::provision::profile::{self, Fqdn};

/// The three files of a NoCloud seed. Its `Debug` shows `user-data` only by size: it holds
/// the node's private host key.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed {
    /// `meta-data`: instance-id and local-hostname.
    pub meta_data: String,
    /// `user-data`: a `#cloud-config` document.
    pub user_data: String,
    /// `network-config`: network config version 1, without a top-level `network:` key.
    pub network_config: String,
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seed")
            .field("meta_data", &self.meta_data)
            .field(
                "user_data",
                &format_args!("<{} bytes>", self.user_data.len()),
            )
            .field("network_config", &self.network_config)
            .finish()
    }
}

/// Renders the whole NoCloud seed of `node`.
pub fn seed(lab: &Lab, node: &Node, ctx: &RenderContext) -> Seed {
    Seed {
        meta_data: meta_data(lab, node, ctx),
        user_data: user_data(lab, node, ctx),
        network_config: network_config(lab, node),
    }
}

/// A double-quoted YAML scalar: every string that comes from the lab.
type Q = DoubleQuoted<String>;

fn q(s: impl Into<String>) -> Q {
    DoubleQuoted(s.into())
}

/// Serializes one seed file: two-space indentation, lists indented under their key, no
/// folding (a long command stays one line), block scalars only where [`LitString`] asks.
fn to_yaml(value: &impl Serialize) -> String {
    let options = serde_saphyr::ser_options! {
        compact_list_indent: false,
        prefer_block_scalars: false,
        min_fold_chars: 0,
    };
    serde_saphyr::to_string_with_options(value, options).expect("seed values always serialize")
}

/// `meta-data`.
#[derive(Serialize)]
struct MetaData {
    #[serde(rename = "instance-id")]
    instance_id: Q,
    #[serde(rename = "local-hostname")]
    local_hostname: Q,
}

/// meta-data: the instance-id (new per node generation, so a rebuilt node is a first boot
/// again) and the local hostname.
pub fn meta_data(lab: &Lab, node: &Node, ctx: &RenderContext) -> String {
    let id = names::instance_id(&lab.name, &node.name, ctx.generation(&node.name));
    to_yaml(&MetaData {
        instance_id: q(id),
        local_hostname: q(&node.name),
    })
}

/// The `fqdn` key, as the profile's cloud-init quirks say (`profiles/<profile>/profile.toml`).
fn fqdn(lab: &Lab, node: &Node) -> String {
    match profile::of(lab.image.profile).cloud_init.fqdn {
        Fqdn::Short => node.name.clone(),
        Fqdn::Full => lab.fqdn(node),
    }
}

/// `user-data`, after its `#cloud-config` line.
#[derive(Serialize)]
struct CloudConfig {
    hostname: Q,
    fqdn: Q,
    locale: Q,
    users: Vec<User>,
    disable_root: bool,
    ssh_pwauth: bool,
    ssh_deletekeys: bool,
    ssh_genkeytypes: FlowSeq<Vec<&'static str>>,
    ssh_keys: SshKeys,
    manage_etc_hosts: bool,
    write_files: Vec<WriteFile>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    runcmd: Vec<LitString>,
}

/// The lab user (no distribution default user).
#[derive(Serialize)]
struct User {
    name: Q,
    sudo: Q,
    shell: &'static str,
    lock_passwd: bool,
    ssh_authorized_keys: Vec<Q>,
}

/// The node's SSH host key, injected so `lab` can pin it. When `ssh_keys` is given, cc_ssh
/// generates no key at all and ignores `ssh_genkeytypes`; the schema refuses an empty list
/// (minItems 1), so the list names ed25519, the type that is already written.
#[derive(Serialize)]
struct SshKeys {
    ed25519_private: LitString,
    ed25519_public: Q,
}

#[derive(Serialize)]
struct WriteFile {
    path: &'static str,
    owner: &'static str,
    permissions: Q,
    content: LitString,
}

/// user-data: `#cloud-config` for hostname, /etc/hosts, the lab user, SSH keys, locale and,
/// on CentOS 7, the switch from NetworkManager to the legacy `network` service.
pub fn user_data(lab: &Lab, node: &Node, ctx: &RenderContext) -> String {
    let host_key = ctx
        .secrets
        .host_keys
        .get(&node.name)
        .expect("lab secrets hold a host key for every node");
    let config = CloudConfig {
        hostname: q(&node.name),
        fqdn: q(fqdn(lab, node)),
        locale: q(&profile::of(lab.image.profile).cloud_init.locale),
        users: vec![User {
            name: q(&lab.user),
            sudo: q("ALL=(ALL) NOPASSWD:ALL"),
            shell: "/bin/bash",
            lock_passwd: true,
            ssh_authorized_keys: vec![q(&ctx.secrets.user_key.public_openssh)],
        }],
        disable_root: true,
        ssh_pwauth: false,
        ssh_deletekeys: true,
        ssh_genkeytypes: FlowSeq(vec!["ed25519"]),
        ssh_keys: SshKeys {
            ed25519_private: LitString(host_key.private_openssh.clone()),
            ed25519_public: q(&host_key.public_openssh),
        },
        manage_etc_hosts: false,
        write_files: vec![WriteFile {
            path: "/etc/hosts",
            owner: "root:root",
            permissions: q("0644"),
            content: LitString(etc_hosts(lab)),
        }],
        runcmd: runcmd(lab.image.profile),
    };
    format!("#cloud-config\n{}", to_yaml(&config))
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

/// What cloud-init runs once at first boot: where the profile asks (CentOS 7), the network
/// step's own script, restarting the network service, which hands the interfaces to it
/// (RHEL's cloud-init leaves NM_CONTROLLED out of the ifcfg files it writes). NetworkManager
/// is disabled, not removed: cloud-final restarts it on builds older than el7_9.5 and fails
/// when it is absent.
fn runcmd(profile: Profile) -> Vec<LitString> {
    if profile::of(profile).cloud_init.network_at_first_boot {
        vec![LitString(format!(
            "{}\n",
            centos7::network_script("restart")
        ))]
    } else {
        Vec::new()
    }
}

/// `network-config` version 1.
#[derive(Serialize)]
struct NetworkConfig {
    version: u8,
    config: Vec<Physical>,
}

/// One NIC, matched by MAC.
#[derive(Serialize)]
struct Physical {
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
    mac_address: Q,
    subnets: Vec<Subnet>,
}

/// A static address; the default route and resolver only on the nat network.
#[derive(Serialize)]
struct Subnet {
    #[serde(rename = "type")]
    kind: &'static str,
    address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<Q>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dns_nameservers: Vec<Q>,
}

/// network-config version 1 (EL7's cloud-init 19.4 handles v1 reliably, v2 has bugs there):
/// one physical interface per NIC, matched by MAC, static addresses, no DHCP. The default
/// route (and the resolver, when libvirt serves DNS) only on the nat network's NIC.
///
/// No top-level `network:` key: NoCloud hands the file as it is to cloud-init's parser, which
/// reads `version` at the top (only `cloud-init devel net-convert` also accepts the wrapper).
pub fn network_config(lab: &Lab, node: &Node) -> String {
    let config = node
        .nics
        .iter()
        .enumerate()
        .map(|(i, nic)| {
            let net = lab
                .network(&nic.network)
                .expect("validated nic is on a lab network");
            physical(i, nic, net)
        })
        .collect();
    to_yaml(&NetworkConfig { version: 1, config })
}

fn physical(index: usize, nic: &Nic, net: &Network) -> Physical {
    let gateway = match (net.kind, net.gateway) {
        (NetKind::Nat, Some(gw)) => Some(gw.to_string()),
        _ => None,
    };
    let dns_nameservers = match &gateway {
        Some(gw) if net.dns => vec![q(gw)],
        _ => Vec::new(),
    };
    Physical {
        kind: "physical",
        name: format!("eth{index}"),
        mac_address: q(nic.mac.to_string()),
        subnets: vec![Subnet {
            kind: "static",
            address: format!("{}/{}", nic.address, net.cidr.prefix),
            gateway: gateway.map(q),
            dns_nameservers,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_scalars_keep_trailing_newlines() {
        #[derive(Serialize)]
        struct T {
            a: LitString,
        }
        let y = |s: &str| {
            to_yaml(&T {
                a: LitString(s.into()),
            })
        };
        assert_eq!(y("a\nb\n"), "a: |\n  a\n  b\n");
        assert_eq!(y("a\n\n"), "a: |+\n  a\n\n");
    }

    #[test]
    fn quoting_escapes_yaml_specials() {
        #[derive(Serialize)]
        struct T {
            a: Q,
        }
        let y = |s: &str| to_yaml(&T { a: q(s) });
        assert_eq!(y("a: b # c"), "a: \"a: b # c\"\n");
        assert_eq!(y("x\"y"), "a: \"x\\\"y\"\n");
    }
}

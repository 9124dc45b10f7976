//! The validated lab: every value typed and checked, ready for rendering.

use std::net::Ipv4Addr;

use serde::Serialize;

pub use super::file::{NetKind, Role};
use super::units::{ByteSize, Cidr, Mac};
use crate::image::Image;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lab {
    pub name: String,
    pub image: Image,
    pub user: String,
    pub domain: String,
    pub networks: Vec<Network>,
    pub nodes: Vec<Node>,
    pub provision: Settings,
}

/// Where provisioning gets time and packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub ntp_server: String,
    /// CentOS 7 trees in the order yum tries them, e.g. `https://vault.centos.org/7.9.2009`
    /// (no trailing slash). Never empty.
    pub centos_base_urls: Vec<String>,
    /// Ocata repositories in the order yum tries them, e.g.
    /// `https://vault.centos.org/7.6.1810/cloud/x86_64/openstack-ocata/`. Never empty.
    pub ocata_repo_urls: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub name: String,
    pub kind: NetKind,
    pub cidr: Cidr,
    /// The host's address on the network (nat only).
    pub gateway: Option<Ipv4Addr>,
    /// nat only: libvirt serves DNS on the gateway (the nodes' resolver).
    pub dns: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub role: Role,
    pub vcpus: u32,
    pub memory: ByteSize,
    /// The disk the node gets: what was asked, raised to the image's virtual size.
    pub disk: ByteSize,
    /// What the lab file asked for.
    pub disk_requested: ByteSize,
    pub nics: Vec<Nic>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    pub network: String,
    pub address: Ipv4Addr,
    pub mac: Mac,
}

/// Something the user should know that is not an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Note {
    /// The disk asked for is smaller than the image: an overlay cannot shrink its backing file.
    DiskRoundedUp {
        node: String,
        requested: String,
        image_size: String,
    },
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Note::DiskRoundedUp {
                node,
                requested,
                image_size,
            } => write!(
                f,
                "{node}: disk {requested} is smaller than the image, so it gets the image's {image_size}"
            ),
        }
    }
}

impl Lab {
    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.name == name)
    }

    /// The only network of a kind (validation guarantees exactly one of each).
    pub fn network_of(&self, kind: NetKind) -> &Network {
        self.networks
            .iter()
            .find(|n| n.kind == kind)
            .expect("validated lab has one network of each kind")
    }

    /// The node that holds the controller role (validation guarantees exactly one).
    pub fn controller(&self) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.role == Role::Controller)
            .expect("validated lab has one controller")
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// A node's NIC on the network of a kind.
    pub fn nic_of<'a>(&self, node: &'a Node, kind: NetKind) -> &'a Nic {
        let net = &self.network_of(kind).name;
        node.nics
            .iter()
            .find(|n| &n.network == net)
            .expect("validated node has a nic on each network kind")
    }

    /// A node's address on the internal (isolated) network: the name other nodes use.
    pub fn internal_address(&self, node: &Node) -> Ipv4Addr {
        self.nic_of(node, NetKind::Isolated).address
    }

    pub fn fqdn(&self, node: &Node) -> String {
        format!("{}.{}", node.name, self.domain)
    }

    /// The most disk one lab-wide snapshot with memory takes (internal qcow2 snapshots): each
    /// node's memory state, at most its RAM, kept in its disk image. The disk blocks written
    /// after the snapshot come on top.
    pub fn snapshot_bytes_max(&self) -> u64 {
        self.nodes.iter().map(|n| n.memory.bytes()).sum()
    }
}

//! [`ValidationError`]: every way a lab file can be wrong, with what to do about it.

use std::net::Ipv4Addr;

use crate::model::units::{Cidr, Mac};

/// What is wrong with a lab file. Tests compare these values; [`std::fmt::Display`] adds
/// what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error(
        "lab name {0:?} is not usable: use 1-20 lowercase letters, digits or '-', starting with a letter"
    )]
    BadLabName(String),
    #[error(
        "node name {0:?} is not a hostname: use 1-20 lowercase letters, digits or '-', starting with a letter"
    )]
    BadNodeName(String),
    #[error(
        "network name {0:?} is not usable: use 1-20 lowercase letters, digits or '-', starting with a letter"
    )]
    BadNetworkName(String),
    #[error(
        "user {0:?} is not a login name: use lowercase letters, digits, '-' or '_', starting with a letter, and not root"
    )]
    BadUser(String),
    #[error(
        "domain {0:?} is not a DNS domain: use labels of letters, digits and '-' joined by dots, like lab.test"
    )]
    BadDomain(String),
    #[error("image {image:?} is not in the catalogue: use one of {known}")]
    UnknownImage { image: String, known: String },
    #[error("{0}")]
    BadValue(String),
    #[error("isolated network {0:?} cannot serve dns: remove the key, or make the network nat")]
    DnsOnIsolated(String),
    #[error("{key} {value:?} is not usable: {fix}")]
    BadSetting {
        key: &'static str,
        value: String,
        fix: &'static str,
    },
    #[error(
        "{0} is an empty list: name at least one url (a local mirror first, then the defaults), or remove the key to use the defaults"
    )]
    EmptyUrlList(&'static str),
    #[error("node {0:?} is defined twice: give each node its own name")]
    DuplicateNode(String),
    #[error("network {0:?} is defined twice: give each network its own name")]
    DuplicateNetwork(String),
    #[error(
        "the lab has {count} {kind} networks: define exactly one (nodes use it as their {use_})"
    )]
    NetworkKindCount {
        kind: &'static str,
        count: usize,
        use_: &'static str,
    },
    #[error("networks {a:?} ({a_cidr}) and {b:?} ({b_cidr}) overlap: give them separate ranges")]
    OverlappingNetworks {
        a: String,
        a_cidr: Cidr,
        b: String,
        b_cidr: Cidr,
    },
    #[error("gateway {gateway} is outside network {network:?} ({cidr}): use an address inside it, like {}", cidr.first_host())]
    GatewayOutside {
        network: String,
        gateway: Ipv4Addr,
        cidr: Cidr,
    },
    #[error("isolated network {0:?} has no gateway: remove the key, or make the network nat")]
    GatewayOnIsolated(String),
    #[error("the lab has {0} controller nodes: define exactly one node with role = \"controller\"")]
    ControllerCount(usize),
    #[error("node {node:?} has vcpus = {value}: give it at least 1")]
    ZeroVcpus { node: String, value: i64 },
    #[error(
        "node {node:?} has vcpus = {value}, more than the {max} of QEMU's pc machine: give it at most {max}"
    )]
    TooManyVcpus { node: String, value: u32, max: u32 },
    #[error("node {0:?} has no memory: give it at least 512MiB, like memory = \"2GiB\"")]
    ZeroMemory(String),
    #[error("node {0:?} has no disk: give it a size, like disk = \"10GB\"")]
    ZeroDisk(String),
    #[error(
        "node {node:?} has a nic on network {network:?}, which is not defined: use one of {known}"
    )]
    UnknownNetwork {
        node: String,
        network: String,
        known: String,
    },
    #[error("node {node:?} has two nics on network {network:?}: keep one")]
    DuplicateNic { node: String, network: String },
    #[error(
        "node {node:?} ({role}) has no nic on the {kind} network {network:?}: add {{ network = \"{network}\", address = \"...\" }} to its nics"
    )]
    MissingNic {
        node: String,
        role: &'static str,
        kind: &'static str,
        network: String,
    },
    #[error(
        "address {address} of node {node:?} is outside network {network:?} ({cidr}): pick an address inside {cidr}"
    )]
    AddressOutside {
        node: String,
        address: Ipv4Addr,
        network: String,
        cidr: Cidr,
    },
    #[error(
        "address {address} of node {node:?} is the network or broadcast address of {cidr}: pick a host address"
    )]
    AddressNotHost {
        node: String,
        address: Ipv4Addr,
        cidr: Cidr,
    },
    #[error(
        "address {address} of node {node:?} is the gateway of network {network:?}: pick another address"
    )]
    AddressIsGateway {
        node: String,
        address: Ipv4Addr,
        network: String,
    },
    #[error(
        "address {address} is used by nodes {first:?} and {second:?}: give each nic its own address"
    )]
    DuplicateAddress {
        address: Ipv4Addr,
        first: String,
        second: String,
    },
    #[error(
        "mac {mac} is used by nodes {first:?} and {second:?}: remove the mac keys to get derived ones, or change one"
    )]
    DuplicateMac {
        mac: Mac,
        first: String,
        second: String,
    },
}

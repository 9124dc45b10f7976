//! Validation: a pure step from the defaulted [`LabFile`] to a [`Lab`], collecting every
//! problem with the key and the place in the file it comes from.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::ops::Range;

use toml::Spanned;

use super::file::{LabFile, NetKind, NetworkFile, NodeFile, ProvisionFile, Role};
use super::lab::{Lab, Network, Nic, Node, Note, Settings};
use super::units::{ByteSize, Cidr, Mac};
use crate::image::Catalogue;

/// The most vCPUs a node may have: QEMU's limit for the machine the domain XML asks for
/// (`pc`, i440FX; `src/render/libvirt.rs`), 255 without an IOMMU (`query-machines` says
/// cpu-max 255 for pc-i440fx-7.2; q35 would take 288). libvirt refuses more at define.
pub const MAX_VCPUS: u32 = 255;

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

/// One problem and where it is: the TOML key path and, when known, its bytes in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub error: ValidationError,
    pub key: String,
    pub span: Option<Range<usize>>,
}

/// Checks a defaulted lab file against the image catalogue.
/// Returns the typed lab and notes, or every problem found.
pub fn validate(file: &LabFile, catalogue: &Catalogue) -> Result<(Lab, Vec<Note>), Vec<Problem>> {
    let mut v = Validator::default();
    let name = v.name(&file.name, "name", ValidationError::BadLabName);
    let user = v.check(file.user.as_ref().expect("defaulted"), "user", |u| {
        is_user(u)
            .then(|| u.to_string())
            .ok_or(ValidationError::BadUser(u.to_string()))
    });
    let domain = v.check(file.domain.as_ref().expect("defaulted"), "domain", |d| {
        is_domain(d)
            .then(|| d.to_string())
            .ok_or(ValidationError::BadDomain(d.to_string()))
    });
    let image = v.check(&file.image, "image", |i| {
        catalogue
            .get(i)
            .cloned()
            .ok_or(ValidationError::UnknownImage {
                image: i.to_string(),
                known: catalogue.names().join(", "),
            })
    });
    let networks = v.networks(&file.networks);
    let provision = v.settings(file.provision.as_ref().expect("defaulted"));
    let nodes = v.nodes(file, &networks, image.as_ref().map(|i| i.virtual_size));
    match (name, user, domain, image, provision, v.problems.is_empty()) {
        (Some(name), Some(user), Some(domain), Some(image), Some(provision), true) => {
            let mut nodes = nodes;
            let notes = round_up_disks(&mut nodes, image.virtual_size);
            let lab = Lab {
                name,
                image,
                user,
                domain,
                networks,
                nodes,
                provision,
            };
            Ok((lab, notes))
        }
        _ => Err(v.problems),
    }
}

fn round_up_disks(nodes: &mut [Node], image_size: ByteSize) -> Vec<Note> {
    let mut notes = Vec::new();
    for node in nodes {
        if node.disk_requested < image_size {
            node.disk = image_size;
            notes.push(Note::DiskRoundedUp {
                node: node.name.clone(),
                requested: node.disk_requested.to_string(),
                image_size: image_size.to_string(),
            });
        }
    }
    notes
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
    /// Network names the file declares, valid or not: a nic on an invalid network is not
    /// reported again.
    declared: Vec<String>,
}

impl Validator {
    fn push(&mut self, error: ValidationError, key: String, span: Range<usize>) {
        let span = (!span.is_empty()).then_some(span);
        self.problems.push(Problem { error, key, span });
    }

    fn check<T, U>(
        &mut self,
        value: &Spanned<T>,
        key: &str,
        f: impl FnOnce(&T) -> Result<U, ValidationError>,
    ) -> Option<U> {
        match f(value.get_ref()) {
            Ok(u) => Some(u),
            Err(e) => {
                self.push(e, key.to_string(), value.span());
                None
            }
        }
    }

    fn parse<T: std::str::FromStr<Err = String>>(
        &mut self,
        value: &Spanned<String>,
        key: &str,
    ) -> Option<T> {
        self.check(value, key, |s| s.parse().map_err(ValidationError::BadValue))
    }

    fn name(
        &mut self,
        value: &Spanned<String>,
        key: &str,
        err: fn(String) -> ValidationError,
    ) -> Option<String> {
        self.check(value, key, |s| {
            is_name(s).then(|| s.clone()).ok_or(err(s.clone()))
        })
    }

    fn networks(&mut self, files: &[NetworkFile]) -> Vec<Network> {
        let mut out: Vec<Network> = Vec::new();
        let mut seen = HashMap::new();
        for (i, f) in files.iter().enumerate() {
            let key = |k: &str| format!("networks[{i}].{k}");
            let before = self.problems.len();
            self.declared.push(f.name.get_ref().clone());
            let name = self.name(&f.name, &key("name"), ValidationError::BadNetworkName);
            if let Some(n) = &name
                && seen.insert(n.clone(), i).is_some()
            {
                self.push(
                    ValidationError::DuplicateNetwork(n.clone()),
                    key("name"),
                    f.name.span(),
                );
            }
            let cidr: Option<Cidr> = self.parse(&f.cidr, &key("cidr"));
            let kind = *f.kind.get_ref();
            let gateway = self.gateway(f, kind, cidr, &key("gateway"));
            let dns = match (&f.dns, kind) {
                (Some(d), NetKind::Isolated) => {
                    let name = f.name.get_ref().clone();
                    self.push(ValidationError::DnsOnIsolated(name), key("dns"), d.span());
                    None
                }
                (d, _) => Some(d.as_ref().is_some_and(|d| *d.get_ref())),
            };
            if let (Some(name), Some(cidr), Some(gateway), Some(dns)) = (name, cidr, gateway, dns) {
                for other in &out {
                    if other.cidr.overlaps(cidr) {
                        let error = ValidationError::OverlappingNetworks {
                            a: other.name.clone(),
                            a_cidr: other.cidr,
                            b: name.clone(),
                            b_cidr: cidr,
                        };
                        self.push(error, key("cidr"), f.cidr.span());
                    }
                }
                if self.problems.len() > before {
                    continue;
                }
                out.push(Network {
                    name,
                    kind,
                    cidr,
                    gateway,
                    dns,
                });
            }
        }
        for (kind, label, use_) in [
            (
                NetKind::Nat,
                "nat",
                "external network, the route to the internet",
            ),
            (
                NetKind::Isolated,
                "isolated",
                "internal network, node to node",
            ),
        ] {
            let count = files
                .iter()
                .enumerate()
                .filter(|(i, f)| {
                    !files[..*i]
                        .iter()
                        .any(|g| g.name.get_ref() == f.name.get_ref())
                })
                .filter(|(_, f)| *f.kind.get_ref() == kind)
                .count();
            if count != 1 {
                let error = ValidationError::NetworkKindCount {
                    kind: label,
                    count,
                    use_,
                };
                self.push(error, "networks".into(), 0..0);
            }
        }
        out
    }

    fn settings(&mut self, p: &ProvisionFile) -> Option<Settings> {
        let host = |s: &String| {
            !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
        };
        let ntp_server = self.check(
            p.ntp_server.as_ref().expect("defaulted"),
            "provision.ntp_server",
            |s| {
                host(s)
                    .then(|| s.clone())
                    .ok_or(ValidationError::BadSetting {
                        key: "ntp_server",
                        value: s.clone(),
                        fix: "give a host name or address, like pool.ntp.org",
                    })
            },
        );
        let centos = p.centos_base_urls.as_ref().expect("defaulted");
        let centos_base_urls = self.urls(centos, "centos_base_urls");
        let ocata = p.ocata_repo_urls.as_ref().expect("defaulted");
        let ocata_repo_urls = self.urls(ocata, "ocata_repo_urls");
        Some(Settings {
            ntp_server: ntp_server?,
            centos_base_urls: centos_base_urls?
                .iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            ocata_repo_urls: ocata_repo_urls?,
        })
    }

    /// A list of repository urls: not empty, each an http(s) url that yum and the shell take
    /// as one word. Problems name the item, like `provision.centos_base_urls[1]`.
    fn urls(
        &mut self,
        list: &Spanned<Vec<Spanned<String>>>,
        key: &'static str,
    ) -> Option<Vec<String>> {
        if list.get_ref().is_empty() {
            let error = ValidationError::EmptyUrlList(key);
            self.push(error, format!("provision.{key}"), list.span());
            return None;
        }
        let before = self.problems.len();
        let mut out = Vec::new();
        for (i, item) in list.get_ref().iter().enumerate() {
            let url = self.check(item, &format!("provision.{key}[{i}]"), |s| {
                let ok = (s.starts_with("http://") || s.starts_with("https://"))
                    && !s
                        .contains(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == '$');
                ok.then(|| s.clone()).ok_or(ValidationError::BadSetting {
                    key,
                    value: s.clone(),
                    fix: "give an http:// or https:// url without spaces or quotes",
                })
            });
            out.extend(url);
        }
        (self.problems.len() == before).then_some(out)
    }

    /// `Some(None)`: a valid network without gateway; `None`: a problem was recorded.
    fn gateway(
        &mut self,
        f: &NetworkFile,
        kind: NetKind,
        cidr: Option<Cidr>,
        key: &str,
    ) -> Option<Option<Ipv4Addr>> {
        match (&f.gateway, kind) {
            (Some(g), NetKind::Isolated) => {
                let name = f.name.get_ref().clone();
                self.push(
                    ValidationError::GatewayOnIsolated(name),
                    key.into(),
                    g.span(),
                );
                None
            }
            (None, NetKind::Isolated) => Some(None),
            (None, NetKind::Nat) => Some(cidr.map(Cidr::first_host)),
            (Some(g), NetKind::Nat) => {
                let ip: Ipv4Addr = self.check(g, key, |s| {
                    s.parse().map_err(|_| {
                        ValidationError::BadValue(format!(
                            "{s:?} is not an IPv4 address: write it like 203.0.113.1"
                        ))
                    })
                })?;
                let cidr = cidr?;
                if !cidr.contains(ip) || ip == cidr.network || ip == cidr.broadcast() {
                    let network = f.name.get_ref().clone();
                    let error = ValidationError::GatewayOutside {
                        network,
                        gateway: ip,
                        cidr,
                    };
                    self.push(error, key.into(), g.span());
                    return None;
                }
                Some(Some(ip))
            }
        }
    }

    fn nodes(
        &mut self,
        file: &LabFile,
        networks: &[Network],
        image_size: Option<ByteSize>,
    ) -> Vec<Node> {
        let lab = file.name.get_ref();
        let mut out: Vec<Node> = Vec::new();
        let mut names = HashMap::new();
        let mut addresses: HashMap<Ipv4Addr, String> = HashMap::new();
        let mut macs: HashMap<Mac, String> = HashMap::new();
        for (i, f) in file.nodes.iter().enumerate() {
            let key = |k: &str| format!("nodes[{i}].{k}");
            let Some(name) = self.name(&f.name, &key("name"), ValidationError::BadNodeName) else {
                continue;
            };
            if names.insert(name.clone(), i).is_some() {
                self.push(
                    ValidationError::DuplicateNode(name.clone()),
                    key("name"),
                    f.name.span(),
                );
                continue;
            }
            let sizes = self.sizes(f, &name, &key);
            let nics = self.nics(lab, f, &name, i, networks, &mut addresses, &mut macs);
            if let (Some((vcpus, memory, disk)), Some(nics)) = (sizes, nics) {
                let role = *f.role.get_ref();
                let disk_requested = disk;
                let disk = image_size.map_or(disk, |s| disk.max(s));
                out.push(Node {
                    name,
                    role,
                    vcpus,
                    memory,
                    disk,
                    disk_requested,
                    nics,
                });
            }
        }
        let controllers = file
            .nodes
            .iter()
            .filter(|n| *n.role.get_ref() == Role::Controller)
            .count();
        if controllers != 1 {
            self.push(
                ValidationError::ControllerCount(controllers),
                "nodes".into(),
                0..0,
            );
        }
        out
    }

    fn sizes(
        &mut self,
        f: &NodeFile,
        name: &str,
        key: &dyn Fn(&str) -> String,
    ) -> Option<(u32, ByteSize, ByteSize)> {
        let vcpus_v = f.vcpus.as_ref().expect("defaulted");
        let vcpus = self.check(vcpus_v, &key("vcpus"), |&v| {
            let vcpus =
                u32::try_from(v)
                    .ok()
                    .filter(|&v| v > 0)
                    .ok_or(ValidationError::ZeroVcpus {
                        node: name.to_string(),
                        value: v,
                    })?;
            if vcpus > MAX_VCPUS {
                return Err(ValidationError::TooManyVcpus {
                    node: name.to_string(),
                    value: vcpus,
                    max: MAX_VCPUS,
                });
            }
            Ok(vcpus)
        });
        let memory_v = f.memory.as_ref().expect("defaulted");
        let memory: Option<ByteSize> = self.parse(memory_v, &key("memory"));
        let memory = memory.and_then(|m| {
            self.check(memory_v, &key("memory"), |_| {
                (m.bytes() >= 512 * ByteSize::MIB)
                    .then_some(m)
                    .ok_or(ValidationError::ZeroMemory(name.to_string()))
            })
        });
        let disk_v = f.disk.as_ref().expect("defaulted");
        let disk: Option<ByteSize> = self.parse(disk_v, &key("disk"));
        let disk = disk.and_then(|d| {
            self.check(disk_v, &key("disk"), |_| {
                (d.bytes() > 0)
                    .then_some(d)
                    .ok_or(ValidationError::ZeroDisk(name.to_string()))
            })
        });
        Some((vcpus?, memory?, disk?))
    }

    #[allow(clippy::too_many_arguments)]
    fn nics(
        &mut self,
        lab: &str,
        f: &NodeFile,
        node: &str,
        i: usize,
        networks: &[Network],
        addresses: &mut HashMap<Ipv4Addr, String>,
        macs: &mut HashMap<Mac, String>,
    ) -> Option<Vec<Nic>> {
        let before = self.problems.len();
        let mut nics: Vec<Nic> = Vec::new();
        for (j, nf) in f.nics.iter().enumerate() {
            let key = |k: &str| format!("nodes[{i}].nics[{j}].{k}");
            let net_name = nf.network.get_ref();
            let Some(net) = networks.iter().find(|n| &n.name == net_name) else {
                if self.declared.contains(net_name) {
                    continue;
                }
                let known = networks
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                let error = ValidationError::UnknownNetwork {
                    node: node.into(),
                    network: net_name.clone(),
                    known,
                };
                self.push(error, key("network"), nf.network.span());
                continue;
            };
            if nics.iter().any(|n| &n.network == net_name) {
                let error = ValidationError::DuplicateNic {
                    node: node.into(),
                    network: net_name.clone(),
                };
                self.push(error, key("network"), nf.network.span());
                continue;
            }
            let address = self.check(&nf.address, &key("address"), |s| {
                let ip: Ipv4Addr = s.parse().map_err(|_| {
                    ValidationError::BadValue(format!(
                        "{s:?} is not an IPv4 address: write it like 10.0.0.11"
                    ))
                })?;
                address_in(node, ip, net)
            });
            let mac = match &nf.mac {
                Some(m) => self.parse(m, &key("mac")),
                None => Some(Mac::derive(lab, node, net_name)),
            };
            let (Some(address), Some(mac)) = (address, mac) else {
                continue;
            };
            if let Some(first) = addresses.insert(address, node.to_string()) {
                let error = ValidationError::DuplicateAddress {
                    address,
                    first,
                    second: node.into(),
                };
                self.push(error, key("address"), nf.address.span());
            }
            if let Some(first) = macs.insert(mac, node.to_string()) {
                let span = nf.mac.as_ref().map_or(nf.network.span(), |m| m.span());
                let error = ValidationError::DuplicateMac {
                    mac,
                    first,
                    second: node.into(),
                };
                self.push(error, key("mac"), span);
            }
            nics.push(Nic {
                network: net_name.clone(),
                address,
                mac,
            });
        }
        self.required_nics(f, node, i, networks, &nics);
        (self.problems.len() == before).then_some(nics)
    }

    /// Every role needs a nic on the external (nat) and the internal (isolated) network.
    fn required_nics(
        &mut self,
        f: &NodeFile,
        node: &str,
        i: usize,
        networks: &[Network],
        nics: &[Nic],
    ) {
        let role = match f.role.get_ref() {
            Role::Controller => "controller",
            Role::Compute => "compute",
        };
        let misnamed = f.nics.iter().any(|n| {
            let name = n.network.get_ref();
            !networks.iter().any(|net| &net.name == name)
        });
        for (kind, label) in [(NetKind::Nat, "nat"), (NetKind::Isolated, "isolated")] {
            let mut of_kind = networks.iter().filter(|n| n.kind == kind);
            let (Some(net), None) = (of_kind.next(), of_kind.next()) else {
                continue;
            };
            let attempted = f.nics.iter().any(|n| n.network.get_ref() == &net.name);
            if !attempted && !misnamed && !nics.iter().any(|n| n.network == net.name) {
                let error = ValidationError::MissingNic {
                    node: node.into(),
                    role,
                    kind: label,
                    network: net.name.clone(),
                };
                self.push(error, format!("nodes[{i}].nics"), f.name.span());
            }
        }
    }
}

fn address_in(node: &str, ip: Ipv4Addr, net: &Network) -> Result<Ipv4Addr, ValidationError> {
    if !net.cidr.contains(ip) {
        return Err(ValidationError::AddressOutside {
            node: node.into(),
            address: ip,
            network: net.name.clone(),
            cidr: net.cidr,
        });
    }
    if ip == net.cidr.network || ip == net.cidr.broadcast() {
        return Err(ValidationError::AddressNotHost {
            node: node.into(),
            address: ip,
            cidr: net.cidr,
        });
    }
    if net.gateway == Some(ip) {
        return Err(ValidationError::AddressIsGateway {
            node: node.into(),
            address: ip,
            network: net.name.clone(),
        });
    }
    Ok(ip)
}

fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=20).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && !s.ends_with('-')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn is_user(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=32).contains(&b.len())
        && s != "root"
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
}

fn is_domain(s: &str) -> bool {
    s.len() <= 200
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

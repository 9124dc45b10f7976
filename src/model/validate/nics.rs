//! A node's nics: networks, addresses and macs, unique across the lab, and the nics every
//! role needs.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::{ValidationError, Validator};
use crate::model::file::{NetKind, NodeFile, Role};
use crate::model::lab::{Network, Nic};
use crate::model::units::Mac;

impl Validator {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn nics(
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

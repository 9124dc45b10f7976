//! The lab's networks: names, ranges, gateways, dns, and one network of each kind.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::{ValidationError, Validator};
use crate::model::file::{NetKind, NetworkFile};
use crate::model::lab::Network;
use crate::model::units::Cidr;

impl Validator {
    pub(super) fn networks(&mut self, files: &[NetworkFile]) -> Vec<Network> {
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
}

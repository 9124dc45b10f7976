//! The lab's nodes: names, one controller, vCPUs, memory and disk.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::{ValidationError, Validator};
use crate::model::file::{LabFile, NodeFile, Role};
use crate::model::lab::{Network, Node};
use crate::model::units::{ByteSize, Mac};

/// The most vCPUs a node may have: QEMU's limit for the machine the domain XML asks for
/// (`pc`, i440FX; `src/render/libvirt/domain.rs`), 255 without an IOMMU (`query-machines` says
/// cpu-max 255 for pc-i440fx-7.2; q35 would take 288). libvirt refuses more at define.
pub const MAX_VCPUS: u32 = 255;

impl Validator {
    pub(super) fn nodes(
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
}

//! The `<lab:owner>` metadata `lab` puts in every domain and network: written with the XML,
//! read back from what libvirt returns.

use std::io;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::{Xml, empty_el, parent_el};
use crate::model::{Lab, Node};
use crate::names;
use crate::render::RenderContext;

/// `<metadata><lab:owner xmlns:lab=NS attrs... version=N/></metadata>`.
pub(super) fn owner_metadata(w: &mut Xml, attrs: &[(&str, &str)]) -> io::Result<()> {
    let element = format!("{}:owner", names::METADATA_PREFIX);
    let xmlns = format!("xmlns:{}", names::METADATA_PREFIX);
    let version = names::FORMAT_VERSION.to_string();
    parent_el(w, "metadata", &[], |w| {
        let mut all = vec![(xmlns.as_str(), names::METADATA_NS)];
        all.extend_from_slice(attrs);
        all.push(("version", &version));
        empty_el(w, &element, &all)
    })
}

/// What a domain's owner metadata records of its node beyond libvirt's own XML, so that
/// `lab up` can tell a changed lab file from the lab that runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Catalogue name of the image the node's disk is an overlay of.
    pub image: String,
    /// Disk size in bytes (after the image's minimum is applied).
    pub disk: u64,
    /// The node's static addresses, in NIC order.
    pub addresses: Vec<String>,
    /// Rebuild count: part of cloud-init's instance-id.
    pub generation: u64,
}

impl NodeSpec {
    pub fn of(lab: &Lab, node: &Node, ctx: &RenderContext) -> NodeSpec {
        NodeSpec {
            image: lab.image.name.clone(),
            disk: node.disk.bytes(),
            addresses: node.nics.iter().map(|n| n.address.to_string()).collect(),
            generation: ctx.generation(&node.name),
        }
    }
}

/// The owner of a domain or network, as its lab metadata records it: what `lab` checks of
/// it. (The element also says the node's role, for people reading libvirt's XML, and the
/// format version, which must be a number.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub lab: String,
    /// Domains only.
    pub node: Option<String>,
    /// Networks only.
    pub network: Option<String>,
    /// The identity of the state directory that created it ([`LabSecrets::owner`]); `None`
    /// on objects made before identities were recorded.
    ///
    /// [`LabSecrets::owner`]: crate::secrets::LabSecrets::owner
    pub state: Option<String>,
    /// Domains only; `None` on objects made before it was recorded.
    pub spec: Option<NodeSpec>,
}

/// Reads the lab metadata out of a domain or network XML as libvirt returns it. The element is matched by
/// namespace URI ([`names::METADATA_NS`]), whatever prefix libvirt gives it. `None` when the
/// XML is not well formed, has no such element, or the element lacks `lab` or `version`.
pub fn read_owner(domain_xml: &str) -> Option<Owner> {
    let mut reader = NsReader::from_str(domain_xml);
    loop {
        match reader.read_resolved_event().ok()? {
            (ResolveResult::Bound(ns), Event::Start(e) | Event::Empty(e))
                if ns.as_ref() == names::METADATA_NS.as_bytes()
                    && e.local_name().as_ref() == b"owner" =>
            {
                return owner_from(&e);
            }
            (_, Event::Eof) => return None,
            _ => {}
        }
    }
}

/// The attributes of an owner element.
fn owner_from(e: &BytesStart) -> Option<Owner> {
    let attr = |name: &str| -> Option<String> {
        let a = e.try_get_attribute(name).ok()??;
        Some(a.unescape_value().ok()?.into_owned())
    };
    let spec = (|| {
        Some(NodeSpec {
            image: attr("image")?,
            disk: attr("disk")?.parse().ok()?,
            addresses: attr("addresses")?
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
            generation: attr("generation")?.parse().ok()?,
        })
    })();
    attr("version")?.parse::<u32>().ok()?;
    Some(Owner {
        lab: attr("lab")?,
        node: attr("node"),
        network: attr("network"),
        state: attr("state"),
        spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = r#"<domain><metadata><x:owner xmlns:x="https://lab.invalid/xmlns/lab/1" lab="a&amp;b" node="n" role="compute" version="1"/></metadata></domain>"#;

    #[test]
    fn read_owner_matches_by_namespace_not_prefix() {
        let owner = read_owner(OWNER).unwrap();
        assert_eq!(owner.lab, "a&b");
        assert_eq!(owner.node.as_deref(), Some("n"));
        assert_eq!((owner.network, owner.state, owner.spec), (None, None, None));
    }

    #[test]
    fn read_owner_ignores_other_namespaces_and_incomplete_elements() {
        let other = OWNER.replace("lab.invalid", "other.invalid");
        assert_eq!(read_owner(&other), None);
        let lab_prefix_wrong_ns = r#"<domain><metadata><lab:owner xmlns:lab="urn:x" lab="a" node="n" role="r" version="1"/></metadata></domain>"#;
        assert_eq!(read_owner(lab_prefix_wrong_ns), None);
        assert_eq!(read_owner(&OWNER.replace(r#" lab="a&amp;b""#, "")), None);
        assert!(read_owner(&OWNER.replace(r#" role="compute""#, "")).is_some());
        assert_eq!(
            read_owner(&OWNER.replace(r#"version="1""#, r#"version="x""#)),
            None
        );
        assert_eq!(read_owner(&OWNER.replace(r#" version="1""#, "")), None);
        assert_eq!(read_owner("<domain><name>x</name></domain>"), None);
        assert_eq!(read_owner("not xml <"), None);
    }
}

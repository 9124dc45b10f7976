//! Storage and snapshots: the overlay and raw `<volume>`s, the lab's `<pool>`, a node's
//! `<domainsnapshot>`.

use super::{document, empty_el, parent_el, text_el};
use crate::model::{Lab, Node};
use crate::names;
use crate::render::RenderContext;

/// `<volume>` of a node's qcow2 overlay on the lab's image (in the same pool).
pub fn overlay_volume_xml(lab: &Lab, node: &Node, ctx: &RenderContext) -> String {
    let backing = ctx.pool_dir.join(names::image_volume(&lab.image.name));
    let backing = backing.to_string_lossy();
    document(|w| {
        parent_el(w, "volume", &[("type", "file")], |w| {
            text_el(w, "name", &[], &names::overlay_volume(&node.name))?;
            let bytes = node.disk.bytes().to_string();
            text_el(w, "capacity", &[("unit", "bytes")], &bytes)?;
            parent_el(w, "target", &[], |w| {
                empty_el(w, "format", &[("type", "qcow2")])
            })?;
            parent_el(w, "backingStore", &[], |w| {
                text_el(w, "path", &[], &backing)?;
                empty_el(w, "format", &[("type", "qcow2")])
            })
        })
    })
}

/// `<volume>` of a raw file of `size_bytes` (seeds; the image, uploaded as it is).
pub fn raw_volume_xml(name: &str, size_bytes: u64) -> String {
    document(|w| {
        parent_el(w, "volume", &[("type", "file")], |w| {
            text_el(w, "name", &[], name)?;
            let bytes = size_bytes.to_string();
            text_el(w, "capacity", &[("unit", "bytes")], &bytes)?;
            parent_el(w, "target", &[], |w| {
                empty_el(w, "format", &[("type", "raw")])
            })
        })
    })
}

/// `<volume>` of an image copied on the host from another pool's (`virStorageVolCreateXMLFrom`):
/// qcow2 like its source, so libvirt copies it as it is (a raw target would convert it); no
/// capacity, so it gets its source's.
pub fn image_copy_xml(name: &str) -> String {
    document(|w| {
        parent_el(w, "volume", &[("type", "file")], |w| {
            text_el(w, "name", &[], name)?;
            text_el(w, "capacity", &[("unit", "bytes")], "0")?;
            parent_el(w, "target", &[], |w| {
                empty_el(w, "format", &[("type", "qcow2")])
            })
        })
    })
}

/// `<pool>` of the lab: a directory pool at `ctx.pool_dir` holding image, overlays and seeds.
pub fn pool_xml(lab: &Lab, ctx: &RenderContext) -> String {
    dir_pool_xml(&names::pool(&lab.name), &ctx.pool_dir)
}

/// Directory of the lab's log pool: in the hypervisor's log directory, where libvirt's log
/// daemon may write (SELinux labels it as logs, not images).
pub fn log_pool_dir(lab: &Lab, ctx: &RenderContext) -> std::path::PathBuf {
    ctx.log_dir.join(names::log_pool(&lab.name))
}

/// `<pool>` of the lab's serial console logs ([`names::log_pool`]), at [`log_pool_dir`].
pub fn log_pool_xml(lab: &Lab, ctx: &RenderContext) -> String {
    dir_pool_xml(&names::log_pool(&lab.name), &log_pool_dir(lab, ctx))
}

fn dir_pool_xml(name: &str, path: &std::path::Path) -> String {
    let path = path.to_string_lossy();
    document(|w| {
        parent_el(w, "pool", &[("type", "dir")], |w| {
            text_el(w, "name", &[], name)?;
            parent_el(w, "target", &[], |w| text_el(w, "path", &[], &path))
        })
    })
}

/// `<domainsnapshot>` of one node for a lab-wide snapshot: internal, with memory (reverting
/// external snapshots needs libvirt >= 9.9; our hosts have 9.0).
pub fn snapshot_xml(name: &str, description: &str) -> String {
    document(|w| {
        parent_el(w, "domainsnapshot", &[], |w| {
            text_el(w, "name", &[], name)?;
            text_el(w, "description", &[], description)?;
            empty_el(w, "memory", &[("snapshot", "internal")])
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_escapes_text() {
        let xml = snapshot_xml("a<b", "x & y");
        assert!(xml.contains("<name>a&lt;b</name>"), "{xml}");
        assert!(
            xml.contains("<description>x &amp; y</description>"),
            "{xml}"
        );
        assert!(xml.ends_with("</domainsnapshot>\n"));
    }
}

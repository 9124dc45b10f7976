//! libvirt XML: networks, domains, storage pools and volumes, snapshots; and the reader of the
//! ownership metadata `lab` puts in every domain.
//!
//! Everything here is pure: XML text in and out, no connection to libvirt. The XML is written
//! with quick-xml's [`Writer`], so every name and value is escaped, indented by two spaces and
//! ends with a newline.

mod domain;
mod network;
mod owner;
mod volume;

use std::io;

use quick_xml::Writer;
use quick_xml::events::BytesText;

pub use domain::{domain_xml, passes_through_cpu};
pub use network::network_xml;
pub use owner::{NodeSpec, Owner, read_owner};
pub use volume::{
    image_copy_xml, log_pool_dir, log_pool_xml, overlay_volume_xml, pool_xml, raw_volume_xml,
    snapshot_xml,
};

type Xml = Writer<Vec<u8>>;

/// Runs `body` on a fresh indenting writer and returns the document with a final newline.
fn document(body: impl FnOnce(&mut Xml) -> io::Result<()>) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    body(&mut w).expect("writing XML to memory cannot fail");
    let mut text = String::from_utf8(w.into_inner()).expect("the writer only gets UTF-8");
    text.push('\n');
    text
}

/// `<name attrs...>value</name>`.
fn text_el(w: &mut Xml, name: &str, attrs: &[(&str, &str)], value: &str) -> io::Result<()> {
    w.create_element(name)
        .with_attributes(attrs.iter().copied())
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

/// `<name attrs.../>`.
fn empty_el(w: &mut Xml, name: &str, attrs: &[(&str, &str)]) -> io::Result<()> {
    w.create_element(name)
        .with_attributes(attrs.iter().copied())
        .write_empty()?;
    Ok(())
}

/// `<name attrs...>` children `</name>`.
fn parent_el(
    w: &mut Xml,
    name: &str,
    attrs: &[(&str, &str)],
    children: impl FnOnce(&mut Xml) -> io::Result<()>,
) -> io::Result<()> {
    w.create_element(name)
        .with_attributes(attrs.iter().copied())
        .write_inner_content(children)?;
    Ok(())
}

//! libvirt rendering: golden files, targeted checks, libvirt's own schemas, and libvirt's test
//! driver (which parses the XML exactly as libvirtd does and returns what it kept).

mod common;

use std::process::Command;

use lab::model::{Lab, NetKind};
use lab::names;
use lab::render::libvirt::{self, Owner};
use lab::render::{Accel, RenderContext};
use quick_xml::Reader;
use quick_xml::events::Event;

const LABS: [&str; 2] = ["openstack-ocata", "openstack-debian12"];
/// Size of the seed volume in the golden files (a real seed ISO is a few hundred KiB).
const SEED_SIZE: u64 = 374_784;

/// One rendered document: file name, schema name of virt-xml-validate, XML.
struct Doc {
    file: String,
    schema: &'static str,
    xml: String,
}

fn doc(file: String, schema: &'static str, xml: String) -> Doc {
    Doc { file, schema, xml }
}

/// Every libvirt document of a lab.
fn documents(lab: &Lab, ctx: &RenderContext) -> Vec<Doc> {
    let mut docs: Vec<Doc> = lab
        .networks
        .iter()
        .map(|n| {
            doc(
                format!("network-{}.xml", n.name),
                "network",
                libvirt::network_xml(lab, n, ctx),
            )
        })
        .collect();
    for node in &lab.nodes {
        let n = &node.name;
        docs.push(doc(
            format!("domain-{n}.xml"),
            "domain",
            libvirt::domain_xml(lab, node, ctx),
        ));
        let overlay = libvirt::overlay_volume_xml(lab, node, ctx);
        docs.push(doc(
            format!("overlay-volume-{n}.xml"),
            "storagevol",
            overlay,
        ));
        let seed = libvirt::raw_volume_xml(&names::seed_volume(&node.name), SEED_SIZE);
        docs.push(doc(format!("seed-volume-{n}.xml"), "storagevol", seed));
    }
    docs.push(doc(
        "pool.xml".into(),
        "storagepool",
        libvirt::pool_xml(lab, ctx),
    ));
    docs.push(doc(
        "image-copy-volume.xml".into(),
        "storagevol",
        libvirt::image_copy_xml(&names::image_volume(&lab.image.name)),
    ));
    docs.push(doc(
        "log-pool.xml".into(),
        "storagepool",
        libvirt::log_pool_xml(lab, ctx),
    ));
    let snapshot = libvirt::snapshot_xml("before-neutron", "all nodes <running> & \"quiet\"");
    docs.push(doc("snapshot.xml".into(), "domainsnapshot", snapshot));
    docs
}

/// Values of `attr` on every `element` of `xml`, in document order.
fn attr_values(xml: &str, element: &str, attr: &str) -> Vec<String> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == element.as_bytes() => {
                if let Some(a) = e.try_get_attribute(attr).unwrap() {
                    out.push(a.unescape_value().unwrap().into_owned());
                }
            }
            Event::Eof => return out,
            _ => {}
        }
    }
}

/// The text of every `element` of `xml`, in document order.
fn texts(xml: &str, element: &str) -> Vec<String> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) if e.name().as_ref() == element.as_bytes() => {
                let raw = reader.read_text(e.name()).unwrap();
                out.push(quick_xml::escape::unescape(&raw).unwrap().into_owned());
            }
            Event::Eof => return out,
            _ => {}
        }
    }
}

#[test]
fn golden_files() {
    for name in LABS {
        let lab = common::lab(name);
        let ctx = common::context(&lab);
        for d in documents(&lab, &ctx) {
            common::assert_golden(&format!("libvirt/{name}/{}", d.file), &d.xml);
        }
    }
}

#[test]
fn every_document_is_indented_and_ends_with_a_newline() {
    let lab = common::lab("openstack-ocata");
    for d in documents(&lab, &common::context(&lab)) {
        assert!(d.xml.ends_with(">\n"), "{}", d.file);
        assert!(
            d.xml.lines().nth(1).unwrap().starts_with("  <"),
            "{}",
            d.file
        );
    }
}

#[test]
fn domain_type_follows_accel() {
    let lab = common::lab("openstack-ocata");
    let mut ctx = common::context(&lab);
    let node = lab.controller();
    ctx.accel = Accel::Tcg;
    assert_eq!(
        attr_values(&libvirt::domain_xml(&lab, node, &ctx), "domain", "type"),
        ["qemu"]
    );
    ctx.accel = Accel::Kvm;
    assert_eq!(
        attr_values(&libvirt::domain_xml(&lab, node, &ctx), "domain", "type"),
        ["kvm"]
    );
}

#[test]
fn one_nic_per_network_in_node_order_with_its_mac() {
    for name in LABS {
        let lab = common::lab(name);
        let ctx = common::context(&lab);
        for node in &lab.nodes {
            let xml = libvirt::domain_xml(&lab, node, &ctx);
            let macs: Vec<String> = node.nics.iter().map(|n| n.mac.to_string()).collect();
            let nets: Vec<String> = node
                .nics
                .iter()
                .map(|n| names::network(&lab.name, &n.network))
                .collect();
            assert_eq!(node.nics.len(), 2);
            assert_eq!(attr_values(&xml, "mac", "address"), macs);
            assert_eq!(attr_values(&xml, "source", "network"), nets);
            assert_eq!(attr_values(&xml, "model", "type"), ["virtio", "virtio"]);
        }
    }
}

#[test]
fn disks_overlay_on_virtio_seed_on_scsi_readonly() {
    let lab = common::lab("openstack-debian12");
    let ctx = common::context(&lab);
    let node = lab.node("compute1").unwrap();
    let xml = libvirt::domain_xml(&lab, node, &ctx);
    assert_eq!(attr_values(&xml, "disk", "device"), ["disk", "cdrom"]);
    assert_eq!(attr_values(&xml, "target", "bus"), ["virtio", "scsi"]);
    assert_eq!(attr_values(&xml, "target", "dev"), ["vda", "sda"]);
    assert_eq!(
        attr_values(&xml, "source", "volume"),
        ["compute1.qcow2", "compute1-seed.iso"]
    );
    assert_eq!(attr_values(&xml, "controller", "model"), ["virtio-scsi"]);
    let seed = &xml[xml.find("device=\"cdrom\"").unwrap()..];
    assert!(
        seed[..seed.find("</disk>").unwrap()].contains("<readonly/>"),
        "{xml}"
    );
}

#[test]
fn serial_log_appends_in_the_labs_log_pool_in_the_log_dir() {
    let lab = common::lab("openstack-ocata");
    let mut ctx = common::context(&lab);
    ctx.log_dir = "/tmp/lab logs".into();
    let xml = libvirt::domain_xml(&lab, lab.controller(), &ctx);
    let file = "/tmp/lab logs/lab-ocata.logs/controller-serial.log";
    assert_eq!(attr_values(&xml, "log", "file"), [file]);
    assert_eq!(attr_values(&xml, "log", "append"), ["on"]);
    assert!(!xml.contains("<uuid"), "libvirt assigns the uuid");
    let pool = libvirt::log_pool_xml(&lab, &ctx);
    assert!(
        pool.contains("<name>lab-ocata.logs</name>")
            && pool.contains("<path>/tmp/lab logs/lab-ocata.logs</path>"),
        "{pool}"
    );
}

#[test]
fn memory_in_kib_and_owner_metadata_reads_back() {
    let lab = common::lab("openstack-ocata");
    let ctx = common::context(&lab);
    let node = lab.node("compute1").unwrap();
    let xml = libvirt::domain_xml(&lab, node, &ctx);
    assert_eq!(texts(&xml, "memory"), ["2097152"]);
    let owner = Owner {
        lab: "ocata".into(),
        node: Some("compute1".into()),
        network: None,
        state: Some(ctx.secrets.owner.clone()),
        spec: Some(libvirt::NodeSpec {
            image: "centos7".into(),
            disk: node.disk.bytes(),
            addresses: vec!["203.0.113.31".into(), "10.0.0.31".into()],
            generation: 1,
        }),
    };
    assert_eq!(libvirt::read_owner(&xml), Some(owner));
}

#[test]
fn nat_network_has_gateway_and_no_dhcp_isolated_has_only_a_bridge() {
    let lab = common::lab("openstack-ocata");
    let nat = libvirt::network_xml(&lab, lab.network_of(NetKind::Nat), &common::context(&lab));
    assert_eq!(attr_values(&nat, "forward", "mode"), ["nat"]);
    assert_eq!(attr_values(&nat, "ip", "address"), ["203.0.113.1"]);
    assert_eq!(attr_values(&nat, "ip", "prefix"), ["24"]);
    assert!(!nat.contains("<dhcp") && !nat.contains("<dns"), "{nat}");
    let isolated = libvirt::network_xml(
        &lab,
        lab.network_of(NetKind::Isolated),
        &common::context(&lab),
    );
    assert!(
        !isolated.contains("<forward") && !isolated.contains("<ip"),
        "{isolated}"
    );
    let bridge = names::bridge("ocata", "internal");
    assert_eq!(attr_values(&isolated, "bridge", "name"), [bridge]);
}

#[test]
fn dns_off_only_when_the_lab_says_so() {
    let lab = common::lab("openstack-debian12");
    let nat = libvirt::network_xml(&lab, lab.network_of(NetKind::Nat), &common::context(&lab));
    assert_eq!(attr_values(&nat, "dns", "enable"), ["no"]);
}

#[test]
fn overlay_backs_onto_the_image_in_the_pool() {
    let lab = common::lab("openstack-ocata");
    let ctx = common::context(&lab);
    let node = lab.controller();
    let xml = libvirt::overlay_volume_xml(&lab, node, &ctx);
    let image = ctx.pool_dir.join(names::image_volume(&lab.image.name));
    assert_eq!(texts(&xml, "path"), [image.to_str().unwrap()]);
    assert_eq!(texts(&xml, "capacity"), [node.disk.bytes().to_string()]);
    assert_eq!(attr_values(&xml, "format", "type"), ["qcow2", "qcow2"]);
}

/// Runs virt-xml-validate on a file; returns its exit code and output.
fn validate(path: &std::path::Path, schema: &str) -> (i32, String) {
    let (code, out, err) = common::run(Command::new("virt-xml-validate").arg(path).arg(schema));
    (code, format!("{out}{err}"))
}

#[test]
fn libvirt_schemas_accept_every_document() {
    common::require_tool("virt-xml-validate", "libvirt-clients");
    let dir = tempfile::tempdir().unwrap();
    for name in LABS {
        let lab = common::lab(name);
        for d in documents(&lab, &common::context(&lab)) {
            let path = common::write_temp(dir.path(), &format!("{name}-{}", d.file), &d.xml);
            let (code, out) = validate(&path, d.schema);
            assert_eq!(code, 0, "{name} {}: {out}\n{}", d.file, d.xml);
        }
    }
}

#[test]
fn libvirt_schema_rejects_a_broken_domain() {
    common::require_tool("virt-xml-validate", "libvirt-clients");
    let dir = tempfile::tempdir().unwrap();
    let lab = common::lab("openstack-ocata");
    let xml = libvirt::domain_xml(&lab, lab.controller(), &common::context(&lab));
    let broken = xml.replace("bus=\"scsi\"", "bus=\"carrier-pigeon\"");
    assert_ne!(broken, xml);
    let path = common::write_temp(dir.path(), "broken.xml", &broken);
    let (code, out) = validate(&path, "domain");
    assert_ne!(code, 0, "the validator accepted a broken domain: {out}");
}

/// libvirt's test driver: an in-process hypervisor that parses XML as libvirtd does.
mod test_driver {
    use super::*;
    use virt::connect::Connect;
    use virt::storage_vol::StorageVol;

    fn connect() -> Connect {
        virt::error::clear_error_callback();
        Connect::open(Some("test:///default")).expect("libvirt's test driver")
    }

    /// A lab with a name no other test uses: the test driver shares state in one process.
    fn unique_lab(file: &str, name: &str) -> Lab {
        let mut lab = common::lab(file);
        lab.name = name.into();
        lab
    }

    /// Every test lab, renamed `<prefix>-<i>`.
    fn unique_labs(prefix: &str) -> Vec<Lab> {
        let rename = |(i, file): (usize, &&str)| unique_lab(file, &format!("{prefix}-{i}"));
        LABS.iter().enumerate().map(rename).collect()
    }

    #[test]
    fn networks_keep_name_bridge_addresses_and_metadata() {
        let conn = connect();
        for lab in unique_labs("tdnet") {
            for net in &lab.networks {
                let defined = conn
                    .define_network_xml(&libvirt::network_xml(&lab, net, &common::context(&lab)))
                    .unwrap();
                let back = defined.xml_desc(0).unwrap();
                let name = names::network(&lab.name, &net.name);
                assert_eq!(defined.name().unwrap(), name);
                let bridge = names::bridge(&lab.name, &net.name);
                assert_eq!(attr_values(&back, "bridge", "name"), [bridge], "{back}");
                let owner = format!("xmlns:lab=\"{}\"", names::METADATA_NS);
                assert!(back.contains(&owner), "metadata dropped: {back}");
                assert!(
                    back.contains(&format!("network=\"{}\"", net.name)),
                    "{back}"
                );
                let gateway: Vec<String> = net.gateway.iter().map(|g| g.to_string()).collect();
                assert_eq!(attr_values(&back, "ip", "address"), gateway, "{back}");
                let dns_off = net.kind == NetKind::Nat && !net.dns;
                let expected: &[&str] = if dns_off { &["no"] } else { &[] };
                assert_eq!(attr_values(&back, "dns", "enable"), expected, "{back}");
                assert!(!back.contains("<dhcp"), "{back}");
                defined.undefine().unwrap();
            }
        }
        drop(conn);
    }

    #[test]
    fn domains_keep_name_macs_and_owner() {
        let conn = connect();
        for lab in unique_labs("tddom") {
            let ctx = common::context(&lab);
            for node in &lab.nodes {
                let dom = conn
                    .define_domain_xml(&libvirt::domain_xml(&lab, node, &ctx))
                    .unwrap();
                let back = dom.xml_desc(0).unwrap();
                assert_eq!(dom.name().unwrap(), names::domain(&lab.name, &node.name));
                let macs: Vec<String> = node.nics.iter().map(|n| n.mac.to_string()).collect();
                assert_eq!(attr_values(&back, "mac", "address"), macs, "{back}");
                let owner = libvirt::read_owner(&back).expect("libvirt kept the metadata");
                assert_eq!(
                    (owner.lab, owner.node),
                    (lab.name.clone(), Some(node.name.clone()))
                );
                let version = names::FORMAT_VERSION.to_string();
                let owner_el = format!("{}:owner", names::METADATA_PREFIX);
                assert_eq!(attr_values(&back, &owner_el, "version"), [version]);
                assert_eq!(
                    attr_values(&back, &owner_el, "role"),
                    [format!("{:?}", node.role).to_lowercase()]
                );
                // libvirt mirrors the serial port's log onto the console that sits on it.
                let appends = attr_values(&back, "log", "append");
                assert!(
                    !appends.is_empty() && appends.iter().all(|a| a == "on"),
                    "{back}"
                );
                assert_eq!(
                    attr_values(&back, "target", "bus"),
                    ["virtio", "scsi"],
                    "{back}"
                );
                dom.undefine().unwrap();
            }
        }
        drop(conn);
    }

    #[test]
    fn pool_overlay_and_seed_volumes() {
        let conn = connect();
        for lab in unique_labs("tdpool") {
            let ctx = common::context(&lab);
            let pool = conn
                .define_storage_pool_xml(&libvirt::pool_xml(&lab, &ctx), 0)
                .unwrap();
            pool.create(0).unwrap();
            assert_eq!(pool.name().unwrap(), names::pool(&lab.name));
            let pool_back = pool.xml_desc(0).unwrap();
            assert_eq!(texts(&pool_back, "path"), [ctx.pool_dir.to_str().unwrap()]);
            for node in &lab.nodes {
                let xml = libvirt::overlay_volume_xml(&lab, node, &ctx);
                let vol = StorageVol::create_xml(&pool, &xml, 0).unwrap();
                assert_eq!(vol.name().unwrap(), names::overlay_volume(&node.name));
                let back = vol.xml_desc(0).unwrap();
                let size = node.disk.bytes().to_string();
                assert_eq!(texts(&back, "capacity"), [size], "{back}");
                vol.delete(0).unwrap();
                let xml = libvirt::raw_volume_xml(&names::seed_volume(&node.name), SEED_SIZE);
                let seed = StorageVol::create_xml(&pool, &xml, 0).unwrap();
                assert_eq!(seed.name().unwrap(), names::seed_volume(&node.name));
                seed.delete(0).unwrap();
            }
            pool.destroy().unwrap();
            pool.undefine().unwrap();
        }
        drop(conn);
    }

    #[test]
    fn internal_snapshot_with_memory_of_a_running_domain() {
        let conn = connect();
        let lab = unique_lab("openstack-debian12", "tdsnap");
        let ctx = common::context(&lab);
        let dom = conn
            .define_domain_xml(&libvirt::domain_xml(&lab, lab.controller(), &ctx))
            .unwrap();
        dom.create().unwrap();
        let xml = libvirt::snapshot_xml("before-keystone", "node <controller> & co");
        let snap = dom.create_snapshot_xml(&xml, 0).unwrap();
        assert_eq!(snap.name().unwrap(), "before-keystone");
        let back = snap.xml_desc(0).unwrap();
        assert_eq!(
            texts(&back, "description"),
            ["node <controller> & co"],
            "{back}"
        );
        assert_eq!(
            attr_values(&back, "memory", "snapshot"),
            ["internal"],
            "{back}"
        );
        snap.delete(0).unwrap();
        dom.destroy().unwrap();
        dom.undefine().unwrap();
        drop(conn);
    }
}

#[test]
fn only_the_compute_node_sees_the_host_cpu_and_only_with_nested_kvm() {
    let lab = common::lab("openstack-ocata");
    let mut ctx = common::context(&lab);
    let cpu = |ctx: &lab::render::RenderContext, node: &str| {
        libvirt::domain_xml(&lab, lab.node(node).unwrap(), ctx)
            .contains(r#"<cpu mode="host-passthrough"/>"#)
    };
    ctx.nested = true;
    assert!(!cpu(&ctx, "compute1"), "tcg: no passthrough");
    ctx.accel = lab::render::Accel::Kvm;
    assert!(cpu(&ctx, "compute1"));
    assert!(!cpu(&ctx, "controller"));
    ctx.nested = false;
    assert!(!cpu(&ctx, "compute1"));
    assert_eq!(
        lab::plan::nested_notes(&lab, lab::render::Accel::Tcg, true),
        [
            "compute1: no nested virtualization under kvm here, so nova on it will need virt_type = qemu"
        ]
    );
    assert!(lab::plan::nested_notes(&lab, lab::render::Accel::Kvm, true).is_empty());
}

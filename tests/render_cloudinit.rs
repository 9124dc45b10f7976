//! cloud-init seeds: golden files, targeted checks, and cloud-init's own validators
//! (`cloud-init schema`, `cloud-init devel net-convert`, its network-config parser).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use lab::model::{Lab, NetKind, Node};
use lab::render::cloudinit::{Seed, seed};

const LABS: [&str; 2] = ["openstack-ocata", "openstack-debian12"];

/// Every (lab file, lab, node, seed) of the shipped labs.
fn all_seeds() -> Vec<(&'static str, Lab, Node, Seed)> {
    let mut out = Vec::new();
    for file in LABS {
        let lab = common::lab(file);
        let ctx = common::context(&lab);
        for node in &lab.nodes {
            out.push((file, lab.clone(), node.clone(), seed(&lab, node, &ctx)));
        }
    }
    out
}

fn files(s: &Seed) -> [(&'static str, &str); 3] {
    [
        ("user-data", &s.user_data),
        ("meta-data", &s.meta_data),
        ("network-config", &s.network_config),
    ]
}

#[test]
fn seeds_match_golden_files() {
    for (file, _, node, s) in all_seeds() {
        for (name, text) in files(&s) {
            common::assert_golden(&format!("cloudinit/{file}/{}/{name}", node.name), text);
        }
    }
}

#[test]
fn hosts_file_lists_every_node_and_no_127_0_1_1() {
    for (_, lab, _, s) in all_seeds() {
        assert!(!s.user_data.contains("127.0.1.1"), "{}", s.user_data);
        assert!(s.user_data.contains("manage_etc_hosts: false\n"));
        for line in [
            "      127.0.0.1 localhost",
            "      ::1 localhost",
            "      10.0.0.11 controller.lab.test controller\n",
            "      10.0.0.31 compute1.lab.test compute1\n",
        ] {
            assert!(s.user_data.contains(line), "{}: no {line:?}", lab.name);
        }
    }
}

#[test]
fn network_manager_is_disabled_only_on_centos7() {
    for (file, _, _, s) in all_seeds() {
        let centos = file == "openstack-ocata";
        for needle in [
            "systemctl disable --now NetworkManager",
            "systemctl enable network",
            "systemctl restart network",
            "echo NM_CONTROLLED=no >>",
            "runcmd:",
        ] {
            assert_eq!(s.user_data.contains(needle), centos, "{file}: {needle}");
        }
        let commands = s
            .user_data
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'));
        for l in commands {
            assert!(
                !l.contains("remove"),
                "NetworkManager must not be removed: {l}"
            );
        }
        let locale = if centos { "en_US.UTF-8" } else { "C.UTF-8" };
        assert!(s.user_data.contains(&format!("locale: \"{locale}\"\n")));
    }
}

#[test]
fn instance_id_changes_with_generation() {
    let lab = common::lab("openstack-ocata");
    let mut ctx = common::context(&lab);
    let node = lab.controller();
    let first = seed(&lab, node, &ctx).meta_data;
    assert_eq!(
        first,
        "instance-id: \"lab-ocata-controller-1\"\nlocal-hostname: \"controller\"\n"
    );
    ctx.generations.insert(node.name.clone(), 2);
    let second = seed(&lab, node, &ctx).meta_data;
    assert!(second.contains("instance-id: \"lab-ocata-controller-2\""));
    // The other node keeps its id.
    let compute = lab.node("compute1").unwrap();
    assert!(
        seed(&lab, compute, &ctx)
            .meta_data
            .contains("lab-ocata-compute1-1")
    );
}

#[test]
fn host_and_user_keys_are_the_lab_secrets() {
    for (file, lab, node, s) in all_seeds() {
        let ctx = common::context(&lab);
        let host = &ctx.secrets.host_keys[&node.name];
        let private: String = host
            .private_openssh
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect();
        assert!(
            s.user_data
                .contains(&format!("  ed25519_private: |\n{private}")),
            "{file}/{}",
            node.name
        );
        assert!(s.user_data.contains(&host.public_openssh));
        assert!(s.user_data.contains(&ctx.secrets.user_key.public_openssh));
    }
}

// --- cloud-init's own validators -------------------------------------------------------

fn require_cloud_init() {
    common::require_tool("cloud-init", "cloud-init");
}

fn schema(dir: &Path, name: &str, text: &str) -> (i32, String) {
    let path = common::write_temp(dir, name, text);
    let (code, out, err) = common::run(
        Command::new("cloud-init")
            .args(["schema", "--config-file"])
            .arg(&path),
    );
    (code, format!("{out}{err}"))
}

#[test]
fn user_data_passes_cloud_init_schema() {
    require_cloud_init();
    let dir = tempfile::tempdir().unwrap();
    for (file, _, node, s) in all_seeds() {
        let (code, out) = schema(dir.path(), "user-data", &s.user_data);
        assert_eq!(code, 0, "{file}/{}: {out}", node.name);
        assert!(out.contains("Valid cloud-config"), "{out}");
    }
}

#[test]
fn cloud_init_schema_rejects_a_bad_key() {
    require_cloud_init();
    let dir = tempfile::tempdir().unwrap();
    let (_, _, _, s) = all_seeds().remove(0);
    // A wrongly typed value of a real key: the schema must catch it.
    let bad = s
        .user_data
        .replace("ssh_pwauth: false", "ssh_pwauth: [1, 2]");
    let (code, out) = schema(dir.path(), "bad-user-data", &bad);
    assert_ne!(code, 0, "schema accepted {bad}\n{out}");
    assert!(out.contains("ssh_pwauth"), "{out}");
}

/// Runs `cloud-init devel net-convert` on a network-config; returns OUTDIR's files by name.
fn net_convert(dir: &Path, text: &str, distro: &str, kind: &str) -> BTreeMap<String, String> {
    let input = common::write_temp(dir, "network-config", text);
    let out = dir.join(format!("out-{distro}-{kind}"));
    let (code, stdout, stderr) = common::run(
        Command::new("cloud-init")
            .args(["devel", "net-convert", "-p"])
            .arg(&input)
            .args(["-k", "yaml", "-D", distro, "-O", kind, "-d"])
            .arg(&out),
    );
    assert_eq!(code, 0, "net-convert {distro} {kind}: {stdout}{stderr}");
    walk(&out, &out)
}

fn walk(root: &Path, dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(root, &path));
        } else {
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            files.insert(rel, std::fs::read_to_string(&path).unwrap());
        }
    }
    files
}

/// The ifcfg file net-convert wrote for the interface with `mac`.
fn ifcfg_with_mac<'a>(files: &'a BTreeMap<String, String>, mac: &str) -> &'a str {
    let hw = format!("HWADDR={mac}\n");
    let found: Vec<_> = files
        .iter()
        .filter(|(p, t)| p.contains("network-scripts/ifcfg-") && t.contains(&hw))
        .collect();
    assert_eq!(found.len(), 1, "one ifcfg with {hw}: {files:#?}");
    found[0].1
}

#[test]
fn network_config_renders_to_sysconfig_for_centos() {
    require_cloud_init();
    for (file, lab, node, s) in all_seeds() {
        let dir = tempfile::tempdir().unwrap();
        let files = net_convert(dir.path(), &s.network_config, "centos", "sysconfig");
        let mut gateways = 0;
        for nic in &node.nics {
            let cfg = ifcfg_with_mac(&files, &nic.mac.to_string());
            let net = lab.network(&nic.network).unwrap();
            assert!(cfg.contains("BOOTPROTO=none\n"), "{cfg}");
            assert!(cfg.contains(&format!("IPADDR={}\n", nic.address)), "{cfg}");
            assert!(
                cfg.contains(&format!("NETMASK={}\n", net.cidr.netmask()))
                    || cfg.contains(&format!("PREFIX={}\n", net.cidr.prefix)),
                "{cfg}"
            );
            // Upstream cloud-init writes NM_CONTROLLED=no; the RHEL package patches it out,
            // which is why the CentOS user-data appends it at boot.
            assert!(cfg.contains("NM_CONTROLLED=no\n"), "{cfg}");
            assert!(!cfg.to_lowercase().contains("dhcp"), "{cfg}");
            if cfg.contains("GATEWAY=") {
                gateways += 1;
                assert_eq!(
                    net.kind,
                    NetKind::Nat,
                    "{file}: gateway off the nat nic: {cfg}"
                );
                assert!(cfg.contains(&format!("GATEWAY={}\n", net.gateway.unwrap())));
            }
        }
        assert_eq!(gateways, 1, "{file}/{}: {files:#?}", node.name);
        dns_in_sysconfig(&lab, &node, &files);
    }
}

/// The resolver (DNS1) appears only on the nat NIC, and only when libvirt serves DNS there.
fn dns_in_sysconfig(lab: &Lab, node: &Node, files: &BTreeMap<String, String>) {
    let nat = lab.network_of(NetKind::Nat);
    let nic = lab.nic_of(node, NetKind::Nat);
    let cfg = ifcfg_with_mac(files, &nic.mac.to_string());
    let dns = format!("DNS1={}\n", nat.gateway.unwrap());
    assert_eq!(cfg.contains(&dns), nat.dns, "{}: {cfg}", lab.name);
    let all: String = files.values().cloned().collect();
    assert_eq!(
        all.matches("DNS1=").count(),
        usize::from(nat.dns),
        "{files:#?}"
    );
}

#[test]
fn network_config_renders_to_eni_for_debian() {
    require_cloud_init();
    for (file, lab, node, s) in all_seeds() {
        let dir = tempfile::tempdir().unwrap();
        let files = net_convert(dir.path(), &s.network_config, "debian", "eni");
        let eni = files
            .iter()
            .find(|(p, _)| p.contains("network/interfaces"))
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("no interfaces file: {files:#?}"));
        let lines: Vec<&str> = eni.lines().map(str::trim).collect();
        for (i, nic) in node.nics.iter().enumerate() {
            let net = lab.network(&nic.network).unwrap();
            let at = lines
                .iter()
                .position(|l| *l == format!("iface eth{i} inet static"))
                .unwrap_or_else(|| panic!("{file}: no static eth{i} in\n{eni}"));
            let address = format!("address {}/{}", nic.address, net.cidr.prefix);
            assert_eq!(lines[at + 1], address, "{file}:\n{eni}");
        }
        let nat = lab.network_of(NetKind::Nat);
        let gateways: Vec<_> = lines.iter().filter(|l| l.starts_with("gateway")).collect();
        assert_eq!(
            gateways,
            [&format!("gateway {}", nat.gateway.unwrap())],
            "{eni}"
        );
        let resolvers = lines.iter().filter(|l| l.starts_with("dns-nameservers"));
        assert_eq!(resolvers.count(), usize::from(nat.dns), "{eni}");
        assert!(!eni.contains("dhcp"), "{eni}");
    }
}

/// The interpreter of the `cloud-init` script (its `#!` line): the one with its modules.
fn cloud_init_python() -> String {
    let (_, path, _) = common::run(Command::new("sh").args(["-c", "command -v cloud-init"]));
    let text = std::fs::read_to_string(path.trim()).unwrap();
    let shebang = text.lines().next().unwrap_or_default();
    let python = shebang.strip_prefix("#!").unwrap_or_default().trim();
    assert!(
        python.contains("python"),
        "cloud-init is not a python script: {shebang}"
    );
    python.split_whitespace().next().unwrap().to_string()
}

/// NoCloud hands network-config to cloud-init's parser as it is (only net-convert strips a
/// top-level `network:` key), so the shipped file must parse as it is: checked with
/// cloud-init's own loader and parser, the calls DataSourceNoCloud and stages make.
#[test]
fn network_config_parses_as_nocloud_reads_it() {
    require_cloud_init();
    let python = cloud_init_python();
    let script = "import sys\n\
        from cloudinit import util\n\
        from cloudinit.net import network_state\n\
        cfg = util.load_yaml(open(sys.argv[1]).read())\n\
        ns = network_state.parse_net_config_data(cfg)\n\
        print(sorted(i['name'] for i in ns.iter_interfaces()))\n";
    for (file, _, node, s) in all_seeds() {
        let dir = tempfile::tempdir().unwrap();
        let path = common::write_temp(dir.path(), "network-config", &s.network_config);
        let (code, out, err) = common::run(Command::new(&python).args(["-c", script]).arg(&path));
        assert_eq!(code, 0, "{file}/{}: {err}", node.name);
        let names: Vec<String> = (0..node.nics.len()).map(|i| format!("'eth{i}'")).collect();
        assert_eq!(out.trim(), format!("[{}]", names.join(", ")));
        // Negative control: the same content under `network:` is not parsed by NoCloud.
        let wrapped = format!(
            "network:\n{}",
            s.network_config
                .lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>()
        );
        let path = common::write_temp(dir.path(), "wrapped", &wrapped);
        let (code, _, _) = common::run(Command::new(&python).args(["-c", script]).arg(&path));
        assert_ne!(code, 0, "a wrapped network-config must not parse");
    }
}

/// The `runcmd:` entries of a user-data: each a literal block (`- |`, its lines indented by
/// four spaces), as `render::cloudinit` writes them (cloud-init's schema test reads them too).
fn runcmd(user_data: &str) -> Vec<String> {
    let Some((_, tail)) = user_data.split_once("\nruncmd:\n") else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for line in tail.lines() {
        if line == "  - |" {
            out.push(String::new());
        } else if let (Some(text), Some(last)) = (line.strip_prefix("    "), out.last_mut()) {
            last.push_str(text);
            last.push('\n');
        } else {
            break;
        }
    }
    out
}

/// Runs the runcmd entries as cloud-init does (one sh script) with the guest's paths moved
/// into `dir` and a `systemctl` that only logs; returns systemctl's calls.
fn run_runcmd(dir: &Path, cmds: &[String]) -> Vec<String> {
    let d = dir.display();
    let script = cmds
        .join("\n")
        .replace("/usr/lib/systemd/system/", &format!("{d}/units/"))
        .replace("/etc/sysconfig/network-scripts/", &format!("{d}/ifcfg/"));
    assert!(!script.contains("/usr/lib/systemd") && !script.contains("/etc/sysconfig"));
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let stub = dir.join("bin/systemctl");
    std::fs::write(&stub, "#!/bin/sh\necho \"$*\" >> \"$SYSTEMCTL_LOG\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.join("systemctl.log");
    let path = format!("{d}/bin:{}", std::env::var("PATH").unwrap());
    let (code, out, err) = common::run(
        Command::new("sh")
            .args(["-c", &script])
            .env("PATH", path)
            .env("SYSTEMCTL_LOG", &log),
    );
    assert_eq!(code, 0, "{script}\n{out}{err}");
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    calls.lines().map(String::from).collect()
}

#[test]
fn network_manager_commands_are_guarded_and_wait_online_is_disabled() {
    for (file, _, node, s) in all_seeds() {
        let cmds = runcmd(&s.user_data);
        if file != "openstack-ocata" {
            assert!(cmds.is_empty(), "{file}");
            continue;
        }
        // Each command on a NetworkManager unit runs inside a test of its unit file.
        let lines: Vec<&str> = cmds.iter().flat_map(|c| c.lines()).collect();
        for (i, l) in lines.iter().enumerate() {
            if l.contains("systemctl") && l.contains("NetworkManager") {
                assert!(
                    i > 0
                        && lines[i - 1]
                            .starts_with("if [ -f /usr/lib/systemd/system/NetworkManager"),
                    "{}: unguarded {l}",
                    node.name
                );
            }
        }
        assert!(
            cmds.iter()
                .any(|c| c.contains("systemctl disable NetworkManager-wait-online"))
        );
    }
    let (_, _, _, s) = all_seeds()
        .into_iter()
        .find(|(f, ..)| *f == "openstack-ocata")
        .unwrap();
    let cmds = runcmd(&s.user_data);
    // An image without NetworkManager and without ifcfg files: only the network service
    // is touched, and no file named after the unmatched glob appears.
    let bare = tempfile::tempdir().unwrap();
    for sub in ["units", "ifcfg"] {
        std::fs::create_dir(bare.path().join(sub)).unwrap();
    }
    assert_eq!(
        run_runcmd(bare.path(), &cmds),
        ["enable network", "restart network"]
    );
    assert_eq!(
        std::fs::read_dir(bare.path().join("ifcfg"))
            .unwrap()
            .count(),
        0
    );
    // With NetworkManager: both units disabled; each interface's file gets NM_CONTROLLED=no once.
    let nm = tempfile::tempdir().unwrap();
    for sub in ["units", "ifcfg"] {
        std::fs::create_dir(nm.path().join(sub)).unwrap();
    }
    for u in [
        "NetworkManager.service",
        "NetworkManager-wait-online.service",
    ] {
        std::fs::write(nm.path().join("units").join(u), "[Unit]\n").unwrap();
    }
    let ifcfg = nm.path().join("ifcfg");
    std::fs::write(ifcfg.join("ifcfg-eth0"), "DEVICE=eth0\n").unwrap();
    std::fs::write(ifcfg.join("ifcfg-eth1"), "DEVICE=eth1\nNM_CONTROLLED=no\n").unwrap();
    std::fs::write(ifcfg.join("ifcfg-eth2"), "DEVICE=eth2\nNM_CONTROLLED=yes\n").unwrap();
    std::fs::write(ifcfg.join("ifcfg-lo"), "DEVICE=lo\n").unwrap();
    assert_eq!(
        run_runcmd(nm.path(), &cmds),
        [
            "disable --now NetworkManager",
            "disable NetworkManager-wait-online",
            "enable network",
            "restart network"
        ]
    );
    // A NM_CONTROLLED=yes line is replaced, not outvoted; the loopback's file is left alone.
    for (f, text) in [
        ("ifcfg-eth0", "DEVICE=eth0\nNM_CONTROLLED=no\n"),
        ("ifcfg-eth1", "DEVICE=eth1\nNM_CONTROLLED=no\n"),
        ("ifcfg-eth2", "DEVICE=eth2\nNM_CONTROLLED=no\n"),
        ("ifcfg-lo", "DEVICE=lo\n"),
    ] {
        assert_eq!(std::fs::read_to_string(ifcfg.join(f)).unwrap(), text);
    }
}

#[test]
fn debug_of_a_seed_and_of_a_nodes_files_shows_no_private_key() {
    for (file, lab, node, s) in all_seeds() {
        assert!(
            s.user_data.contains("PRIVATE KEY"),
            "{file}: the key is there"
        );
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("PRIVATE KEY"),
            "{file} {}: {shown}",
            node.name
        );
        assert!(shown.contains("user_data: <"), "{shown}");
        let ctx = common::context(&lab);
        let all = lab::render::node_files(&lab, &node, &ctx).unwrap();
        let shown = format!("{all:?}");
        assert!(!shown.contains("PRIVATE KEY"), "{file} {}", node.name);
    }
}

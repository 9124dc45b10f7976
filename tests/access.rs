//! What users' own tools read: ssh config, known_hosts, Ansible inventory, the password table.
//! Golden files, and OpenSSH's own parsers (`ssh -G`, `ssh-keygen -F`).

mod common;

use std::path::Path;
use std::process::Command;

use common::{require_tool, run};
use lab::render::access;
use lab::secrets::LabSecrets;

const KEY: &str = "/home/u/.local/state/lab/ocata/id_ed25519";
const HOSTS: &str = "/home/u/.local/state/lab/ocata/known_hosts";

#[test]
fn access_files_are_pinned_by_golden_files() {
    let lab = common::lab("openstack-ocata");
    let secrets = LabSecrets::from_seed(&lab, &common::SEED);
    common::assert_golden(
        "access/ssh-config",
        &access::ssh_config(&lab, Path::new(KEY), Path::new(HOSTS), None),
    );
    common::assert_golden("access/known_hosts", &access::known_hosts(&lab, &secrets));
    common::assert_golden(
        "access/inventory.ini",
        &access::inventory(&lab, Path::new(KEY), Path::new(HOSTS), None),
    );
    let creds = access::creds(&lab, &secrets);
    assert!(
        creds.contains(&format!(
            "RABBIT_PASS      {}",
            secrets.password("RABBIT_PASS")
        )),
        "{creds}"
    );
    assert_eq!(
        creds.lines().count(),
        1 + lab::secrets::PASSWORD_NAMES.len()
    );
}

#[test]
fn no_inventory_group_shares_a_host_name() {
    for name in ["openstack-ocata", "openstack-debian12"] {
        let lab = common::lab(name);
        let ini = access::inventory(&lab, Path::new(KEY), Path::new(HOSTS), None);
        let groups: Vec<&str> = ini
            .lines()
            .filter_map(|l| l.strip_prefix('[')?.strip_suffix(']'))
            .collect();
        assert_eq!(groups, ["controllers", "computes", "all:vars"], "{ini}");
        for node in &lab.nodes {
            assert!(!groups.contains(&node.name.as_str()), "{name}: {ini}");
            let in_group = ini
                .lines()
                .filter(|l| l.starts_with(&format!("{} ", node.name)))
                .count();
            assert_eq!(in_group, 1, "{name}: {} once: {ini}", node.name);
        }
    }
}

#[test]
fn openssh_reads_the_config_and_finds_the_pinned_keys() {
    require_tool("ssh", "openssh-client");
    let lab = common::lab("openstack-ocata");
    let secrets = LabSecrets::from_seed(&lab, &common::SEED);
    let dir = tempfile::tempdir().unwrap();
    let hosts = common::write_temp(
        dir.path(),
        "known_hosts",
        &access::known_hosts(&lab, &secrets),
    );
    let config = common::write_temp(
        dir.path(),
        "config",
        &access::ssh_config(&lab, Path::new(KEY), &hosts, None),
    );
    let out = ssh_g(&config, "compute1");
    for line in [
        "hostname 203.0.113.31",
        "user lab",
        "stricthostkeychecking true",
        "hostkeyalias compute1",
    ] {
        assert!(out.lines().any(|l| l == line), "{line} not in:\n{out}");
    }
    assert!(out.contains(&format!("identityfile {KEY}")), "{out}");
    let want = secrets.host_keys["compute1"]
        .public_openssh
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    for name in ["compute1", "10.0.0.31", "203.0.113.31"] {
        let (code, out, _) = run(Command::new("ssh-keygen")
            .args(["-F", name, "-f"])
            .arg(&hosts));
        assert_eq!(code, 0, "{name} not in known_hosts");
        assert!(out.contains(&want), "{name}: {out}");
    }
}

#[test]
fn on_a_remote_libvirt_host_each_node_goes_through_it() {
    require_tool("ssh", "openssh-client");
    let lab = common::lab("openstack-ocata");
    let uri = "qemu+ssh://root@kvm1:2222/system?keyfile=/k";
    let jump = lab::ssh::config::remote_host(uri).unwrap().unwrap();
    let local = access::ssh_config(&lab, Path::new(KEY), Path::new(HOSTS), None);
    let remote = access::ssh_config(&lab, Path::new(KEY), Path::new(HOSTS), Some(&jump));
    assert_eq!(
        remote.matches("\n  ProxyJump root@kvm1:2222\n\n").count(),
        lab.nodes.len()
    );
    assert_eq!(remote.replace("  ProxyJump root@kvm1:2222\n", ""), local);
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_temp(dir.path(), "config", &remote);
    let out = ssh_g(&config, "compute1");
    assert!(
        out.lines().any(|l| l == "proxyjump root@kvm1:2222"),
        "{out}"
    );
    let ini = access::inventory(&lab, Path::new(KEY), Path::new(HOSTS), Some(&jump));
    let local_ini = access::inventory(&lab, Path::new(KEY), Path::new(HOSTS), None);
    assert!(
        ini.contains(" -o IdentitiesOnly=yes -o ProxyJump=root@kvm1:2222'\n"),
        "{ini}"
    );
    assert_eq!(ini.replace(" -o ProxyJump=root@kvm1:2222", ""), local_ini);
}

/// What OpenSSH makes of `host` with the config file `config` (`ssh -G`).
fn ssh_g(config: &Path, host: &str) -> String {
    let (code, out, err) = run(Command::new("ssh")
        .arg("-G")
        .arg("-F")
        .arg(config)
        .arg(host));
    assert_eq!(code, 0, "{err}");
    out
}

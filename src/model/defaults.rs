//! Defaults: a pure step that fills every optional key of a lab file, so validation sees
//! one complete value. Filled values carry an empty span (they are in no file).

use toml::Spanned;

use super::file::LabFile;

pub const USER: &str = "lab";
pub const DOMAIN: &str = "lab.test";
pub const VCPUS: i64 = 1;
pub const MEMORY: &str = "2GiB";
pub const DISK: &str = "10GB";
pub const NTP_SERVER: &str = "pool.ntp.org";
/// The CentOS 7.9 trees, in the order yum tries them: the vault (DNS round-robin, which has
/// had servers that do not answer), then a second public copy of the vault with the same
/// layout (`7.9.2009/{os,updates,extras}/x86_64`).
pub const CENTOS_BASE_URLS: &[&str] = &[
    "https://vault.centos.org/7.9.2009",
    "https://archive.kernel.org/centos-vault/7.9.2009",
];
/// The Cloud SIG's Ocata repository: 7.6.1810 is the newest vault tree that keeps it.
pub const OCATA_REPO_URLS: &[&str] = &[
    "https://vault.centos.org/7.6.1810/cloud/x86_64/openstack-ocata/",
    "https://archive.kernel.org/centos-vault/7.6.1810/cloud/x86_64/openstack-ocata/",
];

fn fill<T>(slot: &mut Option<Spanned<T>>, value: T) {
    if slot.is_none() {
        *slot = Some(Spanned::new(0..0, value));
    }
}

fn urls(list: &[&str]) -> Vec<Spanned<String>> {
    list.iter()
        .map(|u| Spanned::new(0..0, (*u).to_string()))
        .collect()
}

pub fn apply(mut file: LabFile) -> LabFile {
    fill(&mut file.user, USER.to_string());
    fill(&mut file.domain, DOMAIN.to_string());
    let p = file.provision.get_or_insert_with(Default::default);
    fill(&mut p.ntp_server, NTP_SERVER.to_string());
    fill(&mut p.centos_base_urls, urls(CENTOS_BASE_URLS));
    fill(&mut p.ocata_repo_urls, urls(OCATA_REPO_URLS));
    for net in &mut file.networks {
        if *net.kind.get_ref() == super::file::NetKind::Nat {
            fill(&mut net.dns, true);
        }
    }
    for node in &mut file.nodes {
        fill(&mut node.vcpus, VCPUS);
        fill(&mut node.memory, MEMORY.to_string());
        fill(&mut node.disk, DISK.to_string());
    }
    file
}

//! The centos7-ocata profile's own steps (`profiles/centos7-ocata/steps/`): the RDO Ocata
//! install guide's environment on CentOS 7 (EOL), with every repository pointed at the vault.

use super::common::Guest;
use super::step::{ALL, Step, staged};
use super::template::{context, guest, lines};
use crate::model::Lab;

/// The repo file the Ocata step writes (not `CentOS-*`, so vault-repos never rewrites it).
pub const OCATA_REPO_FILE: &str = "/etc/yum.repos.d/lab-openstack-ocata.repo";

/// The Cloud SIG's signing key (RPM-GPG-KEY-CentOS-SIG-Cloud), which signs the Ocata
/// packages. centos-release-openstack-ocata would install it, but vault's 7.9 extras no
/// longer carry that package, so the key is vendored: the public text from
/// rpm-software-management/distribution-gpg-keys, `keys/centos/RPM-GPG-KEY-CentOS-SIG-Cloud`
/// (its self-signature renewed in 2022; same key). A test checks its fingerprint with gpg.
pub const SIG_CLOUD_KEY: &str =
    guest!("profiles/centos7-ocata/steps/openstack-repo/RPM-GPG-KEY-CentOS-SIG-Cloud").text;
/// Where the key goes on the guest: where the release package puts it, and what the repo
/// file's `gpgkey=` names.
pub const SIG_CLOUD_KEY_PATH: &str = "/etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-SIG-Cloud";
/// The key's fingerprint, as the Cloud SIG publishes it (key id 764429E6).
pub const SIG_CLOUD_KEY_FINGERPRINT: &str = "736AF5116D9C40E2AF6B074BF9B9FEE7764429E6";
/// The key once imported: rpm names a public key `gpg-pubkey-<short key id, lowercase>`.
const SIG_CLOUD_KEY_RPM: &str = "gpg-pubkey-764429e6";

const IFCFG: &str = "/etc/sysconfig/network-scripts/ifcfg-*";

/// Shell condition: the unit file of `unit` is installed. The GenericCloud image may have no
/// NetworkManager at all (its kickstart removes it), so every command on it is guarded. A
/// file test rather than `systemctl cat`: that verb's exit status for a unit without files
/// changed across systemd versions, and EL7's packages install units in /usr/lib/systemd/system.
pub fn unit_installed(unit: &str) -> String {
    UnitInstalled { unit }.render()
}

context! {
    /// Condition: a unit's file is installed where EL7's packages put them.
    struct UnitInstalled = "profiles/centos7-ocata/steps/network/unit-installed.sh" { unit: Word }
}

context! {
    /// Condition: NetworkManager off, the network service on, every ifcfg file not NM's.
    pub struct NetworkCheck = "profiles/centos7-ocata/steps/network/check.sh" { ifcfg: Text }
}

context! {
    /// Hands the interfaces from NetworkManager to the network service.
    struct Network = "profiles/centos7-ocata/steps/network/apply.sh" { ifcfg: Text, nm: Text, wait: Text, verb: Word }
}

/// The network step's script: every ifcfg file not NetworkManager's, NetworkManager and its
/// wait-online unit disabled (where installed), the network service enabled and `verb`ed:
/// `start` in the step (over SSH, whose connection a restart could cut), `restart` at first
/// boot (cloud-init's runcmd), so the ifcfg files it just changed take effect.
pub fn network_script(verb: &str) -> String {
    Network {
        ifcfg: IFCFG,
        nm: &unit_installed("NetworkManager.service"),
        wait: &unit_installed("NetworkManager-wait-online.service"),
        verb,
    }
    .render()
}

/// network: the guide's static networking, without NetworkManager.
pub fn network() -> Step {
    let reason =
        "Disable NetworkManager and use the network service, as the guide's host networking asks.";
    Step::new("network", reason, ALL)
        .check(NetworkCheck { ifcfg: IFCFG }.render())
        .apply(network_script("start"))
}

/// yum's `baseurl=` with several URLs, as yum.conf(5) documents it: the first on the
/// `baseurl=` line, each other on a continuation line indented by whitespace (several
/// `baseurl=` lines would keep only the last). `failovermethod=priority` makes yum try them
/// in the order given (its default, roundrobin, starts at a random one), so a classroom's
/// mirror named first is the one used while it answers.
fn baseurls<'a>(urls: impl IntoIterator<Item = &'a str>, suffix: &str) -> String {
    let mut out = String::new();
    for (i, url) in urls.into_iter().enumerate() {
        out.push_str(if i == 0 { "baseurl=" } else { "        " });
        out.push_str(url);
        out.push_str(suffix);
        out.push('\n');
    }
    out.push_str("failovermethod=priority\n");
    out
}

context! {
    /// CentOS-Base.repo: its four sections.
    struct BaseRepo = "profiles/centos7-ocata/steps/vault-repos/CentOS-Base.repo" { base: Text, updates: Text, extras: Text, centosplus: Text }
}

context! {
    /// One section of CentOS-Base.repo.
    struct BaseSection = "profiles/centos7-ocata/steps/vault-repos/base-section.repo" { id: Word, name: Word, baseurls: Text, enabled: Word }
}

/// CentOS-Base.repo with base, updates and extras at the vault (centosplus kept, disabled).
fn base_repo(lab: &Lab) -> String {
    let urls = &lab.provision.centos_base_urls;
    let section = |id: &str, name: &str, dir: &str, enabled: &str| {
        let suffix = format!("/{dir}/$basearch/");
        let baseurls = baseurls(urls.iter().map(String::as_str), &suffix);
        let text = BaseSection {
            id,
            name,
            baseurls: lines(&baseurls),
            enabled,
        }
        .render();
        lines(&text).to_string()
    };
    BaseRepo {
        base: &section("base", "Base", "os", "1"),
        updates: &section("updates", "Updates", "updates", "1"),
        extras: &section("extras", "Extras", "extras", "1"),
        centosplus: &section("centosplus", "Plus", "centosplus", "0"),
    }
    .render()
}

context! {
    /// Condition: CentOS-Base.repo is the lab's and no repository has a mirrorlist.
    struct VaultReposCheck = "profiles/centos7-ocata/steps/vault-repos/check.sh" { staged: Word, base: Word }
}

context! {
    /// Installs CentOS-Base.repo and comments out every other mirrorlist.
    struct VaultRepos = "profiles/centos7-ocata/steps/vault-repos/apply.sh" { staged: Word, base: Word }
}

/// vault-repos: every CentOS repository at the vault, before any yum call.
pub fn vault_repos(lab: &Lab) -> Step {
    let reason = "Point the CentOS repositories at the vault: CentOS 7 is end of life and its mirrorlist is gone.";
    let base = "/etc/yum.repos.d/CentOS-Base.repo";
    let staged = &staged("vault-repos", "CentOS-Base.repo");
    Step::new("vault-repos", reason, ALL)
        .file("CentOS-Base.repo", 0o644, base_repo(lab))
        .check(VaultReposCheck { staged, base }.render())
        .apply(VaultRepos { staged, base }.render())
}

/// The Ocata repository file, written directly (see [`OCATA_REPO_FILE`]): the
/// `[centos-openstack-ocata]` section of the `CentOS-OpenStack-ocata.repo` that RDO's release
/// package centos-release-openstack-ocata installs (its source: `CentOS-OpenStack.repo` in
/// rdo-infra/centos-release-openstack, `OPENSTACK_VERSION` replaced by `ocata`): the same id,
/// name, `gpgcheck=1`, `enabled=1`, `gpgkey=` and `exclude=sip,PyQt4`. Only the dead
/// `mirrorlist=` gives way to the lab's `ocata_repo_urls`; the disabled -test, -debuginfo and
/// -source sections are left out.
pub fn ocata_repo(lab: &Lab) -> String {
    let urls = lab.provision.ocata_repo_urls.iter().map(String::as_str);
    OcataRepo {
        baseurls: lines(&baseurls(urls, "")),
        key_path: SIG_CLOUD_KEY_PATH,
    }
    .render()
}

context! {
    /// RDO's Ocata repository section.
    struct OcataRepo = "profiles/centos7-ocata/steps/openstack-repo/openstack-ocata.repo" { baseurls: Text, key_path: Word }
}

context! {
    /// Condition: the Cloud SIG key installed and imported, the Ocata repository installed.
    struct OpenstackRepoCheck = "profiles/centos7-ocata/steps/openstack-repo/check.sh" { staged_key: Word, key_path: Word, key_rpm: Word, staged_repo: Word, repo_file: Word }
}

context! {
    /// Installs and imports the Cloud SIG key, then installs the Ocata repository.
    struct OpenstackRepo = "profiles/centos7-ocata/steps/openstack-repo/apply.sh" { staged_key: Word, key_path: Word, key_rpm: Word, staged_repo: Word, repo_file: Word }
}

/// openstack-repo: the RDO Ocata repository and the key that signs it.
pub fn openstack_repo(lab: &Lab) -> Step {
    let reason = "Enable the OpenStack Ocata repository (what centos-release-openstack-ocata would install).";
    let key = "RPM-GPG-KEY-CentOS-SIG-Cloud";
    let repo = "openstack-ocata.repo";
    let id = "openstack-repo";
    let (staged_key, staged_repo) = (&staged(id, key), &staged(id, repo));
    let (key_path, key_rpm, repo_file) = (SIG_CLOUD_KEY_PATH, SIG_CLOUD_KEY_RPM, OCATA_REPO_FILE);
    let check = OpenstackRepoCheck {
        staged_key,
        key_path,
        key_rpm,
        staged_repo,
        repo_file,
    };
    let apply = OpenstackRepo {
        staged_key,
        key_path,
        key_rpm,
        staged_repo,
        repo_file,
    };
    Step::new(id, reason, ALL)
        .file(repo, 0o644, ocata_repo(lab))
        .file(key, 0o644, SIG_CLOUD_KEY)
        .check(check.render())
        .apply(apply.render())
}

/// upgrade: every package at its newest version; reboot when a newer kernel arrived.
pub fn upgrade() -> Step {
    let reason = "Upgrade the packages on all nodes; reboot if the upgrade brought a new kernel.";
    Step::new("upgrade", reason, ALL)
        .check(guest!("profiles/centos7-ocata/steps/upgrade/check.sh").text())
        .apply(guest!("profiles/centos7-ocata/steps/upgrade/apply.sh").text())
        .reboot_check(guest!("profiles/centos7-ocata/steps/upgrade/reboot-check.sh").text())
}

context! {
    /// Condition: SELinux disabled, or openstack-selinux installed.
    pub struct SelinuxCheck = "profiles/centos7-ocata/steps/selinux/check.sh" { installed: Text }
}

/// selinux: OpenStack's SELinux policies, when SELinux is not disabled.
pub fn selinux(guest: &Guest) -> Step {
    let reason = "Install openstack-selinux so SELinux policies manage OpenStack services (when SELinux is on).";
    Step::new("selinux", reason, ALL)
        .check(
            SelinuxCheck {
                installed: &guest.pm.installed(&["openstack-selinux"]),
            }
            .render(),
        )
        .apply(guest!("profiles/centos7-ocata/steps/selinux/apply.sh").text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_base_urls_are_one_baseurl_with_continuation_lines() {
        assert_eq!(
            baseurls(
                ["http://a/7.9.2009", "https://b/7.9.2009"],
                "/os/$basearch/"
            ),
            "baseurl=http://a/7.9.2009/os/$basearch/\n        https://b/7.9.2009/os/$basearch/\n\
             failovermethod=priority\n"
        );
        assert_eq!(
            baseurls(["http://a/"], ""),
            "baseurl=http://a/\nfailovermethod=priority\n"
        );
    }

    #[test]
    fn unit_guards_test_the_unit_file() {
        assert_eq!(
            unit_installed("NetworkManager.service"),
            "[ -f /usr/lib/systemd/system/NetworkManager.service ]"
        );
    }
}

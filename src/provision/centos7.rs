//! The centos7-ocata profile: the RDO Ocata install guide's environment on CentOS 7 (EOL),
//! with every repository pointed at the vault.

use super::common::{self, Guest, LineSetting, Pm};
use super::step::{ALL, Step, all, file_installed, install_file, quote};
use crate::model::{Lab, Node};

/// CentOS 7 package names, paths and services.
pub const GUEST: Guest = Guest {
    pm: Pm::Yum,
    chrony_package: "chrony",
    chrony_conf: "/etc/chrony.conf",
    chrony_service: "chronyd",
    chrony_defaults: "driftfile /var/lib/chrony/drift\nmakestep 1.0 3\nrtcsync\nlogdir /var/log/chrony\n",
    client_packages: &["python-openstackclient"],
    sql_packages: &["mariadb", "mariadb-server", "python2-PyMySQL"],
    sql_conf: "/etc/my.cnf.d/openstack.cnf",
    sql_service: "mariadb",
    mq_packages: &["rabbitmq-server"],
    mq_service: "rabbitmq-server",
    mq_password_on_stdin: false,
    memcached_packages: &["memcached", "python-memcached"],
    memcached_setting: LineSetting {
        path: "/etc/sysconfig/memcached",
        pattern: "^OPTIONS=",
        line: "OPTIONS=\"-l 127.0.0.1,::1,{controller}\"",
    },
    memcached_service: "memcached",
};

/// The repo file the Ocata step writes (not `CentOS-*`, so vault-repos never rewrites it).
pub const OCATA_REPO_FILE: &str = "/etc/yum.repos.d/lab-openstack-ocata.repo";

/// The Cloud SIG's signing key (RPM-GPG-KEY-CentOS-SIG-Cloud), which signs the Ocata
/// packages. centos-release-openstack-ocata would install it, but vault's 7.9 extras no
/// longer carry that package, so the key is vendored: the public text from
/// rpm-software-management/distribution-gpg-keys, `keys/centos/RPM-GPG-KEY-CentOS-SIG-Cloud`
/// (its self-signature renewed in 2022; same key). A test checks its fingerprint with gpg.
pub const SIG_CLOUD_KEY: &str = include_str!("guest/centos7/RPM-GPG-KEY-CentOS-SIG-Cloud");
/// Where the key goes on the guest: where the release package puts it, and what the repo
/// file's `gpgkey=` names.
pub const SIG_CLOUD_KEY_PATH: &str = "/etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-SIG-Cloud";
/// The key's fingerprint, as the Cloud SIG publishes it (key id 764429E6).
pub const SIG_CLOUD_KEY_FINGERPRINT: &str = "736AF5116D9C40E2AF6B074BF9B9FEE7764429E6";
/// The key once imported: rpm names a public key `gpg-pubkey-<short key id, lowercase>`.
const SIG_CLOUD_KEY_RPM: &str = "gpg-pubkey-764429e6";

/// The steps of a centos7-ocata lab, in the guide's order, for every role.
pub fn steps(lab: &Lab, node: &Node) -> Vec<Step> {
    vec![
        network(),
        vault_repos(lab),
        common::chrony(lab, node, &GUEST),
        openstack_repo(lab),
        upgrade(),
        common::client(&GUEST),
        selinux(),
        common::sql(lab, &GUEST),
        common::sql_secure(),
        common::mq(&GUEST),
        common::mq_user(&GUEST),
        common::memcached(lab, &GUEST),
    ]
}

const IFCFG: &str = "/etc/sysconfig/network-scripts/ifcfg-*";

/// Shell condition: the unit file of `unit` is installed. The GenericCloud image may have no
/// NetworkManager at all (its kickstart removes it), so every command on it is guarded. A
/// file test rather than `systemctl cat`: that verb's exit status for a unit without files
/// changed across systemd versions, and EL7's packages install units in /usr/lib/systemd/system.
pub fn unit_installed(unit: &str) -> String {
    format!("[ -f /usr/lib/systemd/system/{} ]", quote(unit))
}

/// network: the guide's static networking, without NetworkManager.
fn network() -> Step {
    let reason =
        "Disable NetworkManager and use the network service, as the guide's host networking asks.";
    Step::new("network", reason, ALL)
        .check(all(&[
            "! systemctl is-enabled --quiet NetworkManager".into(),
            "! systemctl is-active --quiet NetworkManager".into(),
            "! systemctl is-enabled --quiet NetworkManager-wait-online".into(),
            "systemctl is-enabled --quiet network".into(),
            format!("[ -z \"$(grep -L -x NM_CONTROLLED=no {IFCFG} | grep -v '/ifcfg-lo$')\" ]"),
        ]))
        .apply(format!(
            r#"for f in {IFCFG}; do
  [ -e "$f" ] || continue
  case $f in */ifcfg-lo) continue ;; esac
  if ! grep -qx NM_CONTROLLED=no "$f"; then
    sed -i -e '/^NM_CONTROLLED=/d' "$f"
    echo NM_CONTROLLED=no >> "$f"
  fi
done
# Disabled, not removed: cloud-final fails on older 7.9 builds without NetworkManager.
if {nm}; then
  systemctl disable --now NetworkManager
fi
# Its wait-online unit would hold every boot for a network it no longer manages.
if {wait}; then
  systemctl disable NetworkManager-wait-online
fi
systemctl enable network
systemctl start network"#,
            nm = unit_installed("NetworkManager.service"),
            wait = unit_installed("NetworkManager-wait-online.service"),
        ))
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

/// CentOS-Base.repo with base, updates and extras at the vault (centosplus kept, disabled).
fn base_repo(lab: &Lab) -> String {
    let urls = &lab.provision.centos_base_urls;
    let key = "gpgcheck=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7\n";
    let section = |id: &str, name: &str, dir: &str, enabled: u8| {
        let suffix = format!("/{dir}/$basearch/");
        let base = baseurls(urls.iter().map(String::as_str), &suffix);
        format!("[{id}]\nname=CentOS-$releasever - {name}\n{base}{key}enabled={enabled}\n")
    };
    format!(
        "# Written by lab, step vault-repos: CentOS 7 is EOL and mirrorlist.centos.org is gone.\n{}\n{}\n{}\n{}",
        section("base", "Base", "os", 1),
        section("updates", "Updates", "updates", 1),
        section("extras", "Extras", "extras", 1),
        section("centosplus", "Plus", "centosplus", 0),
    )
}

/// vault-repos: every CentOS repository at the vault, before any yum call.
fn vault_repos(lab: &Lab) -> Step {
    let reason = "Point the CentOS repositories at the vault: CentOS 7 is end of life and its mirrorlist is gone.";
    let base = "/etc/yum.repos.d/CentOS-Base.repo";
    Step::new("vault-repos", reason, ALL)
        .file("CentOS-Base.repo", 0o644, base_repo(lab))
        .check(all(&[
            file_installed("vault-repos", "CentOS-Base.repo", base),
            "! grep -q '^mirrorlist=' /etc/yum.repos.d/CentOS-*.repo".into(),
        ]))
        .apply(format!(
            "{}\nsed -i -e 's/^mirrorlist=/#mirrorlist=/' /etc/yum.repos.d/CentOS-*.repo\nyum clean all",
            install_file("vault-repos", "CentOS-Base.repo", base, 0o644)
        ))
}

/// The Ocata repository file, written directly (see [`OCATA_REPO_FILE`]): the
/// `[centos-openstack-ocata]` section of the `CentOS-OpenStack-ocata.repo` that RDO's release
/// package centos-release-openstack-ocata installs (its source: `CentOS-OpenStack.repo` in
/// rdo-infra/centos-release-openstack, `OPENSTACK_VERSION` replaced by `ocata`): the same id,
/// name, `gpgcheck=1`, `enabled=1`, `gpgkey=` and `exclude=sip,PyQt4`. Only the dead
/// `mirrorlist=` gives way to the lab's `ocata_repo_urls`; the disabled -test, -debuginfo and
/// -source sections are left out.
fn ocata_repo(lab: &Lab) -> String {
    let urls = lab.provision.ocata_repo_urls.iter().map(String::as_str);
    format!(
        "# Written by lab, step openstack-repo: the [centos-openstack-ocata] section of RDO's\n\
         # CentOS-OpenStack-ocata.repo (centos-release-openstack-ocata), its dead mirrorlist\n\
         # replaced by the lab's ocata_repo_urls.\n\
         [centos-openstack-ocata]\n\
         name=CentOS-7 - OpenStack ocata\n\
         {}\
         gpgcheck=1\n\
         enabled=1\n\
         gpgkey=file://{SIG_CLOUD_KEY_PATH}\n\
         exclude=sip,PyQt4\n",
        baseurls(urls, "")
    )
}

/// openstack-repo: the RDO Ocata repository and the key that signs it.
fn openstack_repo(lab: &Lab) -> Step {
    let reason = "Enable the OpenStack Ocata repository (what centos-release-openstack-ocata would install).";
    let key = "RPM-GPG-KEY-CentOS-SIG-Cloud";
    let repo = "openstack-ocata.repo";
    let id = "openstack-repo";
    let imported = format!("rpm -q {SIG_CLOUD_KEY_RPM} >/dev/null");
    Step::new(id, reason, ALL)
        .file(repo, 0o644, ocata_repo(lab))
        .file(key, 0o644, SIG_CLOUD_KEY)
        .check(all(&[
            file_installed(id, key, SIG_CLOUD_KEY_PATH),
            imported.clone(),
            file_installed(id, repo, OCATA_REPO_FILE),
        ]))
        .apply(format!(
            "{}\n{imported} || rpm --import {}\n{}\nyum clean all",
            install_file(id, key, SIG_CLOUD_KEY_PATH, 0o644),
            quote(SIG_CLOUD_KEY_PATH),
            install_file(id, repo, OCATA_REPO_FILE, 0o644),
        ))
}

/// upgrade: every package at its newest version; reboot when a newer kernel arrived.
fn upgrade() -> Step {
    let reason = "Upgrade the packages on all nodes; reboot if the upgrade brought a new kernel.";
    Step::new("upgrade", reason, ALL)
        .check("yum -q check-update >/dev/null")
        .apply("yum upgrade -y")
        .reboot_check(
            "[ \"$(rpm -q --last kernel | awk 'NR == 1 {sub(/^kernel-/, \"\", $1); print $1}')\" != \"$(uname -r)\" ]",
        )
}

/// selinux: OpenStack's SELinux policies, when SELinux is not disabled.
fn selinux() -> Step {
    let reason = "Install openstack-selinux so SELinux policies manage OpenStack services (when SELinux is on).";
    let pkg = quote("openstack-selinux");
    Step::new("selinux", reason, ALL)
        .check(format!(
            "[ \"$(getenforce)\" = Disabled ] || {}",
            GUEST.pm.installed(&["openstack-selinux"])
        ))
        .apply(format!("yum install -y {pkg}"))
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

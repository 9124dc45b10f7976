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
/// The Cloud SIG's signing key, fetched by yum over HTTPS on first use (the key is otherwise
/// shipped by centos-release-openstack-ocata, which vault's 7.9 extras no longer carries).
pub const CLOUD_SIG_KEY_URL: &str = "https://www.centos.org/keys/RPM-GPG-KEY-CentOS-SIG-Cloud";

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

/// network: the guide's static networking, without NetworkManager.
fn network() -> Step {
    let reason =
        "Disable NetworkManager and use the network service, as the guide's host networking asks.";
    Step::new("network", reason, ALL)
        .check(all(&[
            "! systemctl is-enabled --quiet NetworkManager".into(),
            "! systemctl is-active --quiet NetworkManager".into(),
            "systemctl is-enabled --quiet network".into(),
            format!("[ -z \"$(grep -L -x NM_CONTROLLED=no {IFCFG} | grep -v '/ifcfg-lo$')\" ]"),
        ]))
        .apply(format!(
            r#"for f in {IFCFG}; do
  case $f in */ifcfg-lo) continue ;; esac
  if ! grep -qx NM_CONTROLLED=no "$f"; then
    sed -i -e '/^NM_CONTROLLED=/d' "$f"
    echo NM_CONTROLLED=no >> "$f"
  fi
done
# Disabled, not removed: cloud-final fails on older 7.9 builds without NetworkManager.
if systemctl cat NetworkManager.service >/dev/null 2>&1; then
  systemctl disable --now NetworkManager
fi
systemctl enable network
systemctl start network"#
        ))
}

/// CentOS-Base.repo with base, updates and extras at the vault (centosplus kept, disabled).
fn base_repo(lab: &Lab) -> String {
    let url = &lab.provision.centos_base_url;
    let key = "gpgcheck=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7\n";
    let section = |id: &str, name: &str, dir: &str, enabled: u8| {
        format!(
            "[{id}]\nname=CentOS-$releasever - {name}\nbaseurl={url}/{dir}/$basearch/\n{key}enabled={enabled}\n"
        )
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

/// The Ocata repository file, written directly (see [`OCATA_REPO_FILE`]).
fn ocata_repo(lab: &Lab) -> String {
    format!(
        "# Written by lab, step openstack-repo: the retired Cloud SIG Ocata repository at the vault.\n[centos-openstack-ocata]\nname=CentOS-7 - OpenStack ocata\nbaseurl={}\ngpgcheck=1\ngpgkey={CLOUD_SIG_KEY_URL}\nenabled=1\n",
        lab.provision.ocata_repo_url
    )
}

/// openstack-repo: the RDO Ocata repository.
fn openstack_repo(lab: &Lab) -> Step {
    let reason = "Enable the OpenStack Ocata repository (what centos-release-openstack-ocata would install).";
    Step::new("openstack-repo", reason, ALL)
        .file("openstack-ocata.repo", 0o644, ocata_repo(lab))
        .check(file_installed(
            "openstack-repo",
            "openstack-ocata.repo",
            OCATA_REPO_FILE,
        ))
        .apply(format!(
            "{}\nyum clean all",
            install_file(
                "openstack-repo",
                "openstack-ocata.repo",
                OCATA_REPO_FILE,
                0o644
            )
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

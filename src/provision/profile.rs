//! A guest profile as data: `profiles/<profile>/profile.toml`, its step list in the guide's
//! order, the values the shared steps are filled with (package manager, packages, paths,
//! services) and cloud-init's quirks on the guest, beside the profile's `chrony-defaults.conf`. Loading is pure: parse (serde,
//! every key required, no other allowed), then check the steps against those `lab` can
//! build ([`STEPS`]); [`steps_of`] builds a node's steps from a loaded profile.
//!
//! The built-in profiles are the folders of `Profile::ALL`, compiled in (`profile_files`); a
//! unit test loads every one, so a broken file fails the build's tests, not a user's run.

use std::sync::OnceLock;

use serde::Deserialize;

use super::common::{self, Guest, LineSetting, Pm};
use super::{Step, centos7};
use crate::image::Profile;
use crate::model::{Lab, Node};
use crate::profile_files;

/// `profile.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    steps: Vec<String>,
    guest: GuestFile,
    cloud_init: CloudInit,
}

/// cloud-init's quirks on a guest: what its NoCloud seed (`render::cloudinit`) must say.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudInit {
    /// The `fqdn` key: the node's short name or its full one.
    pub fqdn: Fqdn,
    /// The `locale` key.
    pub locale: String,
    /// Whether cloud-init's runcmd runs the network step's script (restarting the network
    /// service) at first boot.
    pub network_at_first_boot: bool,
}

/// What the `fqdn` key of a node's user-data holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fqdn {
    /// The node's name (`controller`).
    Short,
    /// The node's name in the lab's domain (`controller.lab.test`).
    Full,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GuestFile {
    package_manager: Pm,
    client_packages: Vec<String>,
    chrony: ChronyFile,
    sql: SqlFile,
    mq: MqFile,
    memcached: MemcachedFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChronyFile {
    package: String,
    conf: String,
    service: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlFile {
    packages: Vec<String>,
    conf: String,
    service: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MqFile {
    packages: Vec<String>,
    service: String,
    password_on_stdin: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemcachedFile {
    packages: Vec<String>,
    service: String,
    setting: SettingFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingFile {
    path: String,
    pattern: String,
    line: String,
}

/// A loaded profile: its steps, in the guide's order, and its guest values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileDef {
    pub steps: Vec<&'static str>,
    pub guest: Guest,
    pub cloud_init: CloudInit,
}

/// Why a `profile.toml` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: no steps: list the guide's steps in `steps`")]
    NoSteps { path: String },
    #[error("{path}: lab has no step {step}: the steps it builds are {known}")]
    UnknownStep {
        path: String,
        step: String,
        known: String,
    },
    #[error("{path}: step {step} is listed twice: keep one")]
    Repeated { path: String, step: String },
}

/// Builds a step for a node from the lab and the profile's guest values.
type Builder = fn(&Lab, &Node, &Guest) -> Step;

/// The steps `lab` can build, by id, in the guide's order: the shared ones
/// (`profiles/common/steps/`) and CentOS 7's own.
pub const STEPS: &[(&str, Builder)] = &[
    ("network", |_, _, _| centos7::network()),
    ("vault-repos", |lab, _, _| centos7::vault_repos(lab)),
    ("chrony", common::chrony),
    ("openstack-repo", |lab, _, _| centos7::openstack_repo(lab)),
    ("upgrade", |_, _, _| centos7::upgrade()),
    ("client", |_, _, guest| common::client(guest)),
    ("selinux", |_, _, guest| centos7::selinux(guest)),
    ("sql", |lab, _, guest| common::sql(lab, guest)),
    ("sql-secure", |_, _, _| common::sql_secure()),
    ("mq", |_, _, guest| common::mq(guest)),
    ("mq-user", |_, _, guest| common::mq_user(guest)),
    ("memcached", |lab, _, guest| common::memcached(lab, guest)),
];

/// Loads a profile from the text of its `profile.toml` (`path` names it in errors) and of its
/// `chrony-defaults.conf`. The strings live as long as the process: a profile is loaded once.
pub fn load(path: &str, text: &str, chrony_defaults: &str) -> Result<ProfileDef, ProfileError> {
    let file: ProfileFile = toml::from_str(text).map_err(|e| ProfileError::Parse {
        path: path.to_string(),
        message: e.message().to_string(),
    })?;
    let steps = known_steps(path, &file.steps)?;
    Ok(ProfileDef {
        steps,
        guest: guest(file.guest, chrony_defaults),
        cloud_init: file.cloud_init,
    })
}

/// The steps' ids as [`STEPS`] spells them, each once.
fn known_steps(path: &str, ids: &[String]) -> Result<Vec<&'static str>, ProfileError> {
    if ids.is_empty() {
        return Err(ProfileError::NoSteps {
            path: path.to_string(),
        });
    }
    let mut out: Vec<&'static str> = Vec::with_capacity(ids.len());
    for id in ids {
        let known =
            builder(id)
                .map(|(known, _)| known)
                .ok_or_else(|| ProfileError::UnknownStep {
                    path: path.to_string(),
                    step: id.clone(),
                    known: STEPS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", "),
                })?;
        if out.contains(&known) {
            return Err(ProfileError::Repeated {
                path: path.to_string(),
                step: id.clone(),
            });
        }
        out.push(known);
    }
    Ok(out)
}

/// The entry of [`STEPS`] for `id`.
fn builder(id: &str) -> Option<(&'static str, Builder)> {
    STEPS.iter().find(|(k, _)| *k == id).copied()
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn leak_all(v: Vec<String>) -> &'static [&'static str] {
    Box::leak(v.into_iter().map(leak).collect())
}

fn guest(g: GuestFile, chrony_defaults: &str) -> Guest {
    Guest {
        pm: g.package_manager,
        chrony_package: leak(g.chrony.package),
        chrony_conf: leak(g.chrony.conf),
        chrony_service: leak(g.chrony.service),
        chrony_defaults: leak(chrony_defaults.to_string()),
        client_packages: leak_all(g.client_packages),
        sql_packages: leak_all(g.sql.packages),
        sql_conf: leak(g.sql.conf),
        sql_service: leak(g.sql.service),
        mq_packages: leak_all(g.mq.packages),
        mq_service: leak(g.mq.service),
        mq_password_on_stdin: g.mq.password_on_stdin,
        memcached_packages: leak_all(g.memcached.packages),
        memcached_setting: LineSetting {
            path: leak(g.memcached.setting.path),
            pattern: leak(g.memcached.setting.pattern),
            line: leak(g.memcached.setting.line),
        },
        memcached_service: leak(g.memcached.service),
    }
}

/// The steps of `node` (every role's: the caller keeps those of its role), in the profile's
/// order.
pub fn steps_of(profile: &ProfileDef, lab: &Lab, node: &Node) -> Vec<Step> {
    profile
        .steps
        .iter()
        .map(|id| build(id, lab, node, &profile.guest))
        .collect()
}

/// The step `id` (one of [`STEPS`]) for `node`, filled with `guest`.
fn build(id: &str, lab: &Lab, node: &Node, guest: &Guest) -> Step {
    let (_, build) =
        builder(id).expect("a profile's steps were checked against STEPS when it loaded");
    build(lab, node, guest)
}

/// Loads the profile of folder `profiles/<dir>/`, compiled in.
fn load_builtin(dir: &str) -> Result<ProfileDef, ProfileError> {
    let path = format!("profiles/{dir}/profile.toml");
    let text = profile_files::expect(&format!("{dir}/profile.toml"));
    load(
        &path,
        text,
        profile_files::expect(&format!("{dir}/chrony-defaults.conf")),
    )
}

/// The built-in profile `profile`, loaded once.
pub fn of(profile: Profile) -> &'static ProfileDef {
    static LOADED: OnceLock<Vec<(Profile, ProfileDef)>> = OnceLock::new();
    let loaded = LOADED.get_or_init(|| {
        Profile::ALL
            .iter()
            .map(|(profile, dir)| {
                let def = load_builtin(dir)
                    .unwrap_or_else(|e| panic!("a built-in profile is broken: {e}"));
                (*profile, def)
            })
            .collect()
    });
    loaded
        .iter()
        .find(|(p, _)| *p == profile)
        .map(|(_, def)| def)
        .expect("every profile has a line in Profile::ALL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_loads() {
        for (_, dir) in Profile::ALL {
            let def = load_builtin(dir).unwrap();
            assert!(def.steps.contains(&"chrony"), "{dir}");
        }
        assert_eq!(of(Profile::Debian12).guest.pm, Pm::Apt);
        assert_eq!(of(Profile::Centos7Ocata).guest.pm, Pm::Yum);
        assert_eq!(of(Profile::Centos7Ocata).steps[0], "network");
    }

    #[test]
    fn every_known_step_is_built() {
        let source = crate::model::Source::resolve("openstack-ocata").unwrap();
        let (lab, _) = source.load(&crate::image::Catalogue::builtin()).unwrap();
        for node in &lab.nodes {
            for (id, _) in STEPS {
                assert_eq!(
                    build(id, &lab, node, &of(Profile::Centos7Ocata).guest).id,
                    *id
                );
            }
        }
    }
}

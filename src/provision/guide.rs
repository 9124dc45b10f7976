//! `lab guide` and `lab up --stop-before`: the install guide's commands for each step, as a
//! student types them, with this lab's names, addresses, passwords and files. The texts are
//! `guide/<profile>/<step>.md`, embedded at build time and filled from a typed context
//! ([`GuideContext`]); rendering is pure. Each text leads to the end state the step's own
//! check accepts (the same files with the same content, the same services), so a step the
//! student did right reports `ok` when `lab up` goes on.

use crate::image::Profile;
use crate::model::{Lab, NetKind, Role};
use crate::provision::{centos7, common, guest_of};
use crate::secrets::LabSecrets;

/// One step's text: its step id and the embedded template.
struct Text {
    step: &'static str,
    text: &'static str,
}

macro_rules! texts {
    ($dir:literal: $($step:literal),+ $(,)?) => {
        &[$(Text {
            step: $step,
            text: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/provision/guide/",
                $dir,
                "/",
                $step,
                ".md"
            )),
        }),+]
    };
}

const DEBIAN12: &[Text] =
    texts!("debian12": "chrony", "client", "sql", "sql-secure", "mq", "mq-user", "memcached");
const CENTOS7: &[Text] = texts!("centos7": "network", "vault-repos", "chrony", "openstack-repo", "upgrade",
    "client", "selinux", "sql", "sql-secure", "mq", "mq-user", "memcached");

fn texts(profile: Profile) -> &'static [Text] {
    match profile {
        Profile::Centos7Ocata => CENTOS7,
        Profile::Debian12 => DEBIAN12,
    }
}

/// The values the guide's texts name, from the lab and its secrets.
#[derive(Debug, Clone)]
pub struct GuideContext {
    pub controller: String,
    /// The controller's address on the internal (management) network.
    pub controller_ip: String,
    /// The first compute node.
    pub compute: String,
    pub compute_ip: String,
    /// The internal network.
    pub cidr: String,
    pub ntp_server: String,
    pub rabbit_pass: String,
    pub db_root_pass: String,
    /// The whole files the student writes, as lab writes them.
    pub chrony_controller: String,
    pub chrony_compute: String,
    pub chrony_conf: &'static str,
    pub openstack_cnf: String,
    pub sql_conf: &'static str,
    /// CentOS 7: the vault's first URL, the Ocata repository file and its path.
    pub vault: String,
    pub ocata_repo: String,
    pub ocata_repo_file: &'static str,
}

impl GuideContext {
    pub fn of(lab: &Lab, secrets: &LabSecrets) -> GuideContext {
        let guest = guest_of(lab.image.profile);
        let controller = lab.controller();
        let compute = lab
            .nodes
            .iter()
            .find(|n| n.role == Role::Compute)
            .unwrap_or(controller);
        GuideContext {
            controller: controller.name.clone(),
            controller_ip: lab.internal_address(controller).to_string(),
            compute: compute.name.clone(),
            compute_ip: lab.internal_address(compute).to_string(),
            cidr: lab.network_of(NetKind::Isolated).cidr.to_string(),
            ntp_server: lab.provision.ntp_server.clone(),
            rabbit_pass: secrets.password("RABBIT_PASS").to_string(),
            db_root_pass: secrets.password("DB_ROOT_PASS").to_string(),
            chrony_controller: common::chrony_conf(lab, controller, guest),
            chrony_compute: common::chrony_conf(lab, compute, guest),
            chrony_conf: guest.chrony_conf,
            openstack_cnf: common::openstack_cnf(lab),
            sql_conf: guest.sql_conf,
            vault: lab
                .provision
                .centos_base_urls
                .first()
                .cloned()
                .unwrap_or_default(),
            ocata_repo: centos7::ocata_repo(lab),
            ocata_repo_file: centos7::OCATA_REPO_FILE,
        }
    }

    /// The value of placeholder `name` (a file's content without its final newline).
    fn value(&self, name: &str) -> Option<&str> {
        Some(match name {
            "controller" => &self.controller,
            "controller_ip" => &self.controller_ip,
            "compute" => &self.compute,
            "compute_ip" => &self.compute_ip,
            "cidr" => &self.cidr,
            "ntp_server" => &self.ntp_server,
            "rabbit_pass" => &self.rabbit_pass,
            "db_root_pass" => &self.db_root_pass,
            "chrony_controller" => self.chrony_controller.trim_end(),
            "chrony_compute" => self.chrony_compute.trim_end(),
            "chrony_conf" => self.chrony_conf,
            "openstack_cnf" => self.openstack_cnf.trim_end(),
            "sql_conf" => self.sql_conf,
            "vault" => &self.vault,
            "ocata_repo" => self.ocata_repo.trim_end(),
            "ocata_repo_file" => self.ocata_repo_file,
            _ => return None,
        })
    }

    /// `text` with every `{{name}}` filled. A name the context lacks is a bug in `lab` (the
    /// texts are compiled in): it panics, and the tests, which fill every text, catch it.
    pub fn fill(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find("}}").expect("an unclosed {{ in a guide text");
            let name = &after[..end];
            out.push_str(
                self.value(name)
                    .unwrap_or_else(|| panic!("guide text: no value for {{{{{name}}}}}")),
            );
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// The step ids that have a text, in the guide's order.
pub fn steps(lab: &Lab) -> Vec<&'static str> {
    texts(lab.image.profile).iter().map(|t| t.step).collect()
}

/// The guide from step `from` on (every step without it), filled with the lab's values;
/// `None` for a step the lab's profile does not have.
pub fn text(lab: &Lab, secrets: &LabSecrets, from: Option<&str>) -> Option<String> {
    let all = texts(lab.image.profile);
    let first = match from {
        None => 0,
        Some(step) => all.iter().position(|t| t.step == step)?,
    };
    let ctx = GuideContext::of(lab, secrets);
    let parts: Vec<String> = all[first..].iter().map(|t| ctx.fill(t.text)).collect();
    Some(parts.join("\n"))
}

//! `lab guide` and `lab up --stop-before`: the install guide's commands for each step, as a
//! student types them, with this lab's names, addresses, passwords and files.
//!
//! The texts are `profiles/<profile>/guide/<step>.md`, one per step of the profile, compiled
//! in (`profile_files`) and filled from one typed context ([`GuideContext`]); rendering is
//! pure. Each text leads to the end state the step's own check accepts: every file the
//! student writes is the very content lab uploads for that step (taken from the step itself),
//! at the path lab installs it to, with the same packages and services, so a step done by
//! hand reports `ok` when `lab up` goes on, and `lab verify STEP` passes.
//!
//! A text is markdown-like plain text: a `## <step>: <what>` heading, the install guide's
//! section, prose (it starts with a capital letter or `- `), a line naming the node(s) with
//! the `lab ssh NODE` that opens a root shell there, and command paragraphs (they start with
//! a lower-case letter) flush left, so a pasted here-document's `EOF` ends it.

use std::borrow::Cow;

use crate::image::Profile;
use crate::model::{Lab, Node, Role};
use crate::provision::step::staged;
use crate::secrets::LabSecrets;

/// The template of `step`: `profiles/<profile>/guide/<step>.md`, compiled in. Every step of a
/// profile has one (a unit test holds it to that).
fn template(profile: Profile, step: &str) -> &'static str {
    crate::profile_files::get(&format!("{}/guide/{step}.md", profile.dir()))
        .unwrap_or_else(|| panic!("no guide text for step {step} of profile {profile:?}"))
}

/// The values the guide's texts name, from the lab and its secrets. Its `Debug` shows the
/// passwords only by name.
#[derive(Clone, PartialEq, Eq)]
pub struct GuideContext {
    /// The controller's name (`{{controller}}`).
    pub controller: String,
    /// The controller's address on the internal (management) network, e.g. 10.0.0.11.
    pub controller_ip: String,
    /// The first compute node (the controller in a lab without one).
    pub compute: String,
    pub compute_ip: String,
    /// Every compute node, in the lab's order.
    pub computes: Vec<String>,
    /// Every node, in the lab's order.
    pub nodes: Vec<String>,
    /// The internal network, e.g. 10.0.0.0/24.
    pub cidr: String,
    /// The NTP server the controller follows (`lab.provision.ntp_server`).
    pub ntp_server: String,
    pub rabbit_pass: String,
    pub db_root_pass: String,
    /// The whole files the student writes, exactly as the step uploads them.
    pub chrony_controller: String,
    pub chrony_compute: String,
    pub openstack_cnf: String,
    /// CentOS 7 only (`None` on a profile without the step): CentOS-Base.repo at the vault
    /// (`lab.provision.centos_base_urls`), RDO's Ocata repository section
    /// (`lab.provision.ocata_repo_urls`) and the vendored Cloud SIG key that signs it.
    pub base_repo: Option<String>,
    pub ocata_repo: Option<String>,
    pub sig_cloud_key: Option<String>,
}

impl std::fmt::Debug for GuideContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuideContext")
            .field("controller", &self.controller)
            .field("controller_ip", &self.controller_ip)
            .field("computes", &self.computes)
            .field("cidr", &self.cidr)
            .field("ntp_server", &self.ntp_server)
            .field("rabbit_pass", &"<RABBIT_PASS>")
            .field("db_root_pass", &"<DB_ROOT_PASS>")
            .finish_non_exhaustive()
    }
}

/// The content a node's step uploads as `name`, if the node has that step and file.
fn upload(lab: &Lab, node: &Node, step: &str, name: &str) -> Option<String> {
    let path = staged(step, name);
    crate::provision::steps(lab, node)
        .into_iter()
        .find(|s| s.id == step)?
        .files
        .into_iter()
        .find(|f| f.path == path)
        .map(|f| f.content)
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(words: &[String]) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

impl GuideContext {
    pub fn of(lab: &Lab, secrets: &LabSecrets) -> GuideContext {
        let controller = lab.controller();
        let computes: Vec<&Node> = lab
            .nodes
            .iter()
            .filter(|n| n.role == Role::Compute)
            .collect();
        // A compute node's files even in a lab without one: the controller as a compute node.
        let stand_in;
        let compute = match computes.first() {
            Some(n) => *n,
            None => {
                stand_in = Node {
                    role: Role::Compute,
                    ..controller.clone()
                };
                &stand_in
            }
        };
        let file = |node: &Node, step: &str, name: &str| {
            upload(lab, node, step, name)
                .unwrap_or_else(|| panic!("step {step} of {} uploads no {name}", node.name))
        };
        GuideContext {
            controller: controller.name.clone(),
            controller_ip: lab.internal_address(controller).to_string(),
            compute: compute.name.clone(),
            compute_ip: lab.internal_address(compute).to_string(),
            computes: computes.iter().map(|n| n.name.clone()).collect(),
            nodes: lab.nodes.iter().map(|n| n.name.clone()).collect(),
            cidr: lab
                .network_of(crate::model::NetKind::Isolated)
                .cidr
                .to_string(),
            ntp_server: lab.provision.ntp_server.clone(),
            rabbit_pass: secrets.password("RABBIT_PASS").to_string(),
            db_root_pass: secrets.password("DB_ROOT_PASS").to_string(),
            chrony_controller: file(controller, "chrony", "chrony.conf"),
            chrony_compute: file(compute, "chrony", "chrony.conf"),
            openstack_cnf: file(controller, "sql", "openstack.cnf"),
            base_repo: upload(lab, controller, "vault-repos", "CentOS-Base.repo"),
            ocata_repo: upload(lab, controller, "openstack-repo", "openstack-ocata.repo"),
            sig_cloud_key: upload(
                lab,
                controller,
                "openstack-repo",
                "RPM-GPG-KEY-CentOS-SIG-Cloud",
            ),
        }
    }

    /// The line that names where the next commands run and how to get a shell there.
    fn on(&self, nodes: &[String], each: &str) -> String {
        let shells: Vec<String> = nodes.iter().map(|n| format!("`lab ssh {n}`")).collect();
        match nodes {
            [] => format!("On {each} (this lab has none: skip these commands):"),
            [one] => format!("On {one} (open a root shell there: {}):", shells[0]),
            _ => format!(
                "On {each}, {} (open a root shell on each:\n{}):",
                and_list(nodes),
                shells.join(", ")
            ),
        }
    }

    /// The value of placeholder `name`: a file without its final newline (the text puts
    /// `EOF` on the next line); `None` for a name it does not know or a value this lab lacks.
    fn value(&self, name: &str) -> Option<Cow<'_, str>> {
        let file = |f: &str| f.strip_suffix('\n').unwrap_or(f).to_string();
        let opt = |f: &Option<String>| f.as_deref().map(|f| Cow::Owned(file(f)));
        Some(match name {
            "controller" => Cow::Borrowed(self.controller.as_str()),
            "controller_ip" => Cow::Borrowed(self.controller_ip.as_str()),
            "compute" => Cow::Borrowed(self.compute.as_str()),
            "compute_ip" => Cow::Borrowed(self.compute_ip.as_str()),
            "cidr" => Cow::Borrowed(self.cidr.as_str()),
            "ntp_server" => Cow::Borrowed(self.ntp_server.as_str()),
            "rabbit_pass" => Cow::Borrowed(self.rabbit_pass.as_str()),
            "db_root_pass" => Cow::Borrowed(self.db_root_pass.as_str()),
            "on_controller" => {
                Cow::Owned(self.on(std::slice::from_ref(&self.controller), "the controller"))
            }
            "on_computes" => Cow::Owned(self.on(&self.computes, "each compute node")),
            "on_every_node" => Cow::Owned(self.on(&self.nodes, "each node")),
            "chrony_controller" => Cow::Owned(file(&self.chrony_controller)),
            "chrony_compute" => Cow::Owned(file(&self.chrony_compute)),
            "openstack_cnf" => Cow::Owned(file(&self.openstack_cnf)),
            "base_repo" => return opt(&self.base_repo),
            "ocata_repo" => return opt(&self.ocata_repo),
            "sig_cloud_key" => return opt(&self.sig_cloud_key),
            _ => return None,
        })
    }

    /// `template` with every `{{name}}` filled. A placeholder without a value is a bug in
    /// `lab` (the texts are compiled in): it panics, and the unit tests, which fill every
    /// text of every profile, catch it. A value a text does not use is fine.
    fn fill(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() * 2);
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .unwrap_or_else(|| panic!("guide text: an unclosed {{{{ before {after:.40?}"));
            let name = &after[..end];
            let value = self
                .value(name)
                .unwrap_or_else(|| panic!("guide text: no value for {{{{{name}}}}}"));
            out.push_str(&value);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// The step ids that have a text, in the guide's order, for the lab's profile: the
/// profile's steps ([`crate::provision::order`]), every one of which has a text.
pub fn steps(lab: &Lab) -> Vec<&'static str> {
    crate::provision::order(lab)
}

/// The text of `from` and of every step after it (every step when `None`), filled with the
/// lab's values; `None` for a step the lab's profile does not have.
pub fn text(lab: &Lab, secrets: &LabSecrets, from: Option<&str>) -> Option<String> {
    let order = steps(lab);
    let first = match from {
        None => 0,
        Some(step) => order.iter().position(|s| *s == step)?,
    };
    let ctx = GuideContext::of(lab, secrets);
    let parts: Vec<String> = order[first..]
        .iter()
        .map(|step| ctx.fill(template(lab.image.profile, step)))
        .collect();
    Some(parts.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(name: &str) -> Lab {
        crate::model::Source::resolve(name)
            .unwrap()
            .load(&crate::image::Catalogue::builtin())
            .unwrap()
            .0
    }

    /// Both shipped labs, one per profile, with their contexts.
    fn labs() -> Vec<(Lab, GuideContext)> {
        ["openstack-ocata", "openstack-debian12"]
            .into_iter()
            .map(|name| {
                let lab = lab(name);
                let secrets = LabSecrets::from_seed(&lab, &[7; 32]);
                let ctx = GuideContext::of(&lab, &secrets);
                (lab, ctx)
            })
            .collect()
    }

    #[test]
    fn debug_names_the_passwords_without_their_values() {
        let (_, ctx) = labs().remove(1);
        let shown = format!("{ctx:?}");
        assert!(!shown.contains(&ctx.rabbit_pass) && !shown.contains(&ctx.db_root_pass));
        assert!(shown.contains("<RABBIT_PASS>"), "{shown}");
    }

    /// The guide texts in a profile's folder: `(step, template)`, by file name.
    struct Text {
        step: &'static str,
        template: &'static str,
    }

    fn texts(profile: Profile) -> Vec<Text> {
        let prefix = format!("{}/guide/", profile.dir());
        crate::profile_files::FILES
            .iter()
            .filter_map(|(path, template)| {
                let step = path.strip_prefix(&prefix)?.strip_suffix(".md")?;
                Some(Text { step, template })
            })
            .collect()
    }

    #[test]
    fn both_profiles_are_covered() {
        let profiles: Vec<Profile> = labs().iter().map(|(l, _)| l.image.profile).collect();
        assert_eq!(profiles, [Profile::Centos7Ocata, Profile::Debian12]);
    }

    #[test]
    fn every_template_of_both_profiles_fills() {
        for (lab, ctx) in labs() {
            for t in texts(lab.image.profile) {
                // Panics on a placeholder without a value.
                let text = ctx.fill(t.template);
                assert!(!text.contains("{{") && !text.contains("}}"), "{}", t.step);
                assert!(
                    text.ends_with('\n') && !text.ends_with("\n\n"),
                    "{}",
                    t.step
                );
            }
        }
    }

    #[test]
    fn every_step_has_a_text_and_every_text_a_step() {
        for (lab, _) in labs() {
            let order = crate::provision::order(&lab);
            let mut ids: Vec<&str> = texts(lab.image.profile).iter().map(|t| t.step).collect();
            let mut sorted = order.clone();
            ids.sort();
            sorted.sort();
            assert_eq!(ids, sorted, "{:?}", lab.image.profile);
            assert_eq!(steps(&lab), order);
        }
    }

    #[test]
    fn every_text_names_its_step_section_check_and_snapshot() {
        for (lab, ctx) in labs() {
            for t in texts(lab.image.profile) {
                let (id, text) = (t.step, ctx.fill(t.template));
                let (section, _) = crate::provision::section(id);
                let mut lines = text.lines();
                assert!(lines.next().unwrap().starts_with(&format!("## {id}: ")));
                let second = lines.next().unwrap();
                assert!(
                    second.starts_with(&format!("Install guide: Environment > {section}")),
                    "{id}: {second}"
                );
                assert!(text.contains(&format!("Check: `lab verify {id}`")), "{id}");
                assert!(
                    text.contains(&format!("`lab up --stop-before {id}`")),
                    "{id}"
                );
                assert!(text.contains(&format!("`lab reset before-{id}`")), "{id}");
                assert!(text.contains("`lab ssh "), "{id}: no node named");
            }
        }
    }

    #[test]
    #[should_panic(expected = "guide text: no value for {{nope}}")]
    fn a_placeholder_without_a_value_panics() {
        labs()[1].1.fill("a {{controller}} b {{nope}}\n");
    }

    #[test]
    #[should_panic(expected = "guide text: no value for {{base_repo}}")]
    fn a_centos_file_has_no_value_on_debian() {
        let (lab, ctx) = &labs()[1];
        assert_eq!(lab.image.profile, Profile::Debian12);
        ctx.fill("{{base_repo}}");
    }

    #[test]
    #[should_panic(expected = "unclosed")]
    fn an_unclosed_placeholder_panics() {
        labs()[1].1.fill("a {{controller\n");
    }

    #[test]
    fn the_node_lines_name_each_node_and_its_shell() {
        let (_, mut ctx) = labs().remove(1);
        assert_eq!(
            ctx.fill("{{on_controller}}"),
            "On controller (open a root shell there: `lab ssh controller`):"
        );
        assert_eq!(
            ctx.fill("{{on_every_node}}"),
            "On each node, controller and compute1 (open a root shell on each:\n\
             `lab ssh controller`, `lab ssh compute1`):"
        );
        ctx.computes = vec!["c1".into(), "c2".into(), "c3".into()];
        assert_eq!(
            ctx.fill("{{on_computes}}"),
            "On each compute node, c1, c2 and c3 (open a root shell on each:\n\
             `lab ssh c1`, `lab ssh c2`, `lab ssh c3`):"
        );
        ctx.computes.clear();
        assert_eq!(
            ctx.fill("{{on_computes}}"),
            "On each compute node (this lab has none: skip these commands):"
        );
    }

    #[test]
    fn a_lab_without_a_compute_node_still_has_its_guide() {
        let mut lab = lab("openstack-debian12");
        lab.nodes.retain(|n| n.role == Role::Controller);
        let secrets = LabSecrets::from_seed(&lab, &[7; 32]);
        let text = text(&lab, &secrets, None).unwrap();
        assert!(text.contains("this lab has none"), "{text}");
        assert!(text.contains("server controller iburst"), "{text}");
    }
}

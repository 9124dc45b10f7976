//! Provisioning: the guide's steps as data, per guest profile, and their transcript.
//!
//! [`steps`] gives a node's plan as [`Step`]s an SSH engine can run (check, apply, uploads,
//! secrets by name, dependencies on other nodes, reboot checks); [`mod@script`] renders the same
//! plan as a bash transcript.

pub mod amqp;
pub mod batch;
pub mod centos7;
pub mod common;
pub mod engine;
pub mod profile;
pub mod script;
pub mod step;
pub mod step_run;
pub mod template;
pub mod verify;

/// Run by `lab start` on a node it booted: waits (at most 300 s) until systemd has started
/// the boot's units, so the services `lab verify` checks answer.
pub const BOOT_WAIT: &str = include_str!("scripts/boot-wait.sh");
pub mod wire;

pub use step::{After, Step, Upload, quote};

use crate::image::Profile;
use crate::model::{Lab, Node};

/// The steps of `node`, in order: its profile's steps for its role.
pub fn steps(lab: &Lab, node: &Node) -> Vec<Step> {
    profile::steps_of(profile::of(lab.image.profile), lab, node)
        .into_iter()
        .filter(|s| s.applies_to(node.role))
        .collect()
}

/// Every step id of the lab's profile, in the guide's order (whatever the node).
pub fn order(lab: &Lab) -> Vec<&'static str> {
    profile::of(lab.image.profile).steps.clone()
}

/// The profile's package, path and service names.
pub fn guest_of(profile: Profile) -> &'static common::Guest {
    &profile::of(profile).guest
}

/// A step as a user sees it (`lab steps`): its place in the install guide and its nodes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GuideStep {
    pub id: &'static str,
    /// The install guide's section, under "Environment".
    pub section: &'static str,
    /// The step this one finishes (`mq-user` finishes `mq`): `lab verify mq` runs its checks too.
    pub part_of: Option<&'static str>,
    pub reason: &'static str,
    /// The nodes it runs on, in the lab's order.
    pub nodes: Vec<String>,
}

/// The guide's section of a step, and the step it finishes. Both profiles use the same ids.
pub fn section(id: &str) -> (&'static str, Option<&'static str>) {
    match id {
        "network" => ("Host networking", None),
        "chrony" => ("Network Time Protocol (NTP)", None),
        "sql" => ("SQL database", None),
        "sql-secure" => ("SQL database", Some("sql")),
        "mq" => ("Message queue", None),
        "mq-user" => ("Message queue", Some("mq")),
        "memcached" => ("Memcached", None),
        _ => ("OpenStack packages", None),
    }
}

/// Every step of the lab, in the guide's order.
pub fn guide_steps(lab: &Lab) -> Vec<GuideStep> {
    order(lab)
        .into_iter()
        .map(|id| {
            let mut reason = "";
            let nodes = lab
                .nodes
                .iter()
                .filter(|n| {
                    let step = steps(lab, n).into_iter().find(|s| s.id == id);
                    if let Some(s) = &step {
                        reason = s.reason;
                    }
                    step.is_some()
                })
                .map(|n| n.name.clone())
                .collect();
            let (section, part_of) = section(id);
            GuideStep {
                id,
                section,
                part_of,
                reason,
                nodes,
            }
        })
        .collect()
}

/// A step name the lab's profile does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no step {step} in this lab: its steps are {known} (`lab steps` lists them)")]
pub struct UnknownStep {
    pub step: String,
    pub known: String,
}

impl crate::failure::Classify for UnknownStep {
    fn class(&self) -> crate::failure::ExitClass {
        crate::failure::ExitClass::Usage
    }
}

/// Fails unless the lab's profile has a step `name`.
pub fn require_step(lab: &Lab, name: &str) -> Result<(), UnknownStep> {
    let order = order(lab);
    if order.contains(&name) {
        Ok(())
    } else {
        Err(UnknownStep {
            step: name.to_string(),
            known: order.join(", "),
        })
    }
}

/// The steps `name` stands for when a user names it: the step and those that finish it.
pub fn with_parts(lab: &Lab, name: &str) -> Vec<&'static str> {
    order(lab)
        .into_iter()
        .filter(|id| *id == name || section(id).1 == Some(name))
        .collect()
}

/// The provisioning plan of a node as a readable shell transcript.
pub fn script(lab: &Lab, node: &Node) -> String {
    script::render(lab, node, &steps(lab, node))
}
pub mod guide;

//! Provisioning: the guide's steps as data, per guest profile, and their transcript.
//!
//! [`steps`] gives a node's plan as [`Step`]s an SSH engine can run (check, apply, uploads,
//! secrets by name, dependencies on other nodes, reboot checks); [`mod@script`] renders the same
//! plan as a bash transcript.

pub mod centos7;
pub mod clock;
pub mod common;
pub mod debian12;
pub mod engine;
pub mod script;
pub mod step;
pub mod template;
pub mod verify;
pub mod wire;

pub use step::{After, Step, Upload, quote};

use crate::image::Profile;
use crate::model::{Lab, Node};

/// The steps of `node`, in order: its profile's steps for its role.
pub fn steps(lab: &Lab, node: &Node) -> Vec<Step> {
    let all = match lab.image.profile {
        Profile::Centos7Ocata => centos7::steps(lab, node),
        Profile::Debian12 => debian12::steps(lab, node),
    };
    all.into_iter()
        .filter(|s| s.applies_to(node.role))
        .collect()
}

/// The provisioning plan of a node as a readable shell transcript.
pub fn script(lab: &Lab, node: &Node) -> String {
    script::render(lab, node, &steps(lab, node))
}

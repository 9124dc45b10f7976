//! Provisioning: the guide's steps as data, per guest profile.

use crate::model::{Lab, Node};

/// The provisioning plan of a node as a readable shell transcript.
pub fn script(lab: &Lab, node: &Node) -> String {
    let _ = (lab, node);
    unimplemented!("helper: provisioning steps")
}

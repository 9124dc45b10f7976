//! The cloud-init NoCloud seed of a node: meta-data, user-data, network-config (v1).

use super::RenderContext;
use crate::model::{Lab, Node};

/// The three files of a NoCloud seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub meta_data: String,
    pub user_data: String,
    pub network_config: String,
}

pub fn seed(lab: &Lab, node: &Node, ctx: &RenderContext) -> Seed {
    let _ = (lab, node, ctx);
    unimplemented!("helper: cloud-init rendering")
}

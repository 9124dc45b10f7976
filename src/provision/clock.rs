//! `lab reset`'s clocks: the script that makes chrony follow its source again after a revert.
//! The clock line and a guest clock read against the host's over one round trip live in the
//! bottom module [`crate::clock`] (the ssh layer reads clocks with them); re-exported here.

use crate::model::Role;

pub use crate::clock::{
    CLOCK_LINE, ClockReading, MAX_CLOCK_OFFSET, READ_CLOCK, STEP_ABOVE, best_reading, parse_clock,
};

/// Run by `lab reset` on every node once every clock is right: chrony drops the samples
/// the revert brought back and measures its sources again; on a node that follows another
/// node of the lab it returns once chrony follows it (exit 1 with `chronyc sources` if not
/// within 60 s). Reads `follow`, set by [`clock_resync`].
pub const CLOCK_RESYNC: &str = include_str!("guest/clock-resync.sh");

/// [`CLOCK_RESYNC`] for one node: `follow` is the address of the node of the lab its chrony
/// follows (compute nodes follow the controller, see [`follows_a_node`]).
pub fn clock_resync(follow: Option<std::net::Ipv4Addr>) -> String {
    let follow = follow.map_or(String::new(), |ip| ip.to_string());
    format!("follow={follow}\n{CLOCK_RESYNC}")
}

/// Whether a node's chrony follows another node of the lab (and so must follow it again
/// after a reset before `lab verify` can pass): the compute nodes follow the controller.
pub fn follows_a_node(role: Role) -> bool {
    role == Role::Compute
}

//! Provisioning: the guide's steps as data, per guest profile, and their transcript.
//!
//! [`steps`] gives a node's plan as [`Step`]s an SSH engine can run (check, apply, uploads,
//! secrets by name, dependencies on other nodes, reboot checks); [`mod@script`] renders the same
//! plan as a bash transcript.

pub mod centos7;
pub mod common;
pub mod debian12;
pub mod engine;
pub mod script;
pub mod step;
pub mod verify;

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

/// Run on a node after a revert, when its clock is the snapshot's: set the clock to `now`
/// (the host's), then make chrony poll its server at once instead of after its long poll
/// interval.
pub fn clock_resync(now: std::time::SystemTime) -> String {
    let t = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "date -u -s @{}.{:09} >/dev/null\ncommand -v chronyc >/dev/null || exit 0\nchronyc -a 'burst 4/4' >/dev/null\n",
        t.as_secs(),
        t.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn clock_resync_sets_the_given_time_to_the_nanosecond_then_bursts() {
        let now = UNIX_EPOCH + Duration::new(1_795_769_509, 42);
        let script = super::clock_resync(now);
        assert!(
            script.starts_with("date -u -s @1795769509.000000042 >/dev/null\n"),
            "{script}"
        );
        assert!(script.contains("chronyc -a 'burst 4/4'"), "{script}");
    }
}

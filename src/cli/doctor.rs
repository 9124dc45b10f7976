//! `lab doctor`: parse, delegate to [`crate::app::doctor`], print.

use crate::cli::LabArgs;
use crate::doctor;

/// Check this host for the lab and say what to do about each problem.
///
/// Checks: libvirt reachable on the URI; /dev/kvm usable and real (vmx/svm) or the tcg
/// fallback; nested virtualization for the compute node's own guests; memory and disk for
/// the lab; the pool directory reachable by the hypervisor's user; the image cached and
/// verified; name and subnet clashes. Exits 0 when the lab can come up. With --json:
/// [{check, level (ok|warn|fail), detail, fix}].
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(lab: &LabArgs, _: Args) -> crate::failure::Result<()> {
    let t = lab.target()?;
    let findings = crate::app::doctor(&t)?;
    if lab.json {
        crate::cli::output::print_json(&findings, true)?;
    } else {
        for f in &findings {
            let level = format!("{:?}", f.level).to_lowercase();
            println!("{level:<5} {:<9} {}", f.check, f.detail);
            if !f.fix.is_empty() {
                println!("      {:<9} -> {}", "", f.fix);
            }
        }
    }
    if doctor::can_come_up(&findings) {
        Ok(())
    } else {
        Err(crate::failure::Failure::host(
            "the lab cannot come up here: fix the failures above",
        ))
    }
}

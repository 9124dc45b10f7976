//! `lab doctor`: parse, run the checks of [`crate::doctor`], print.

use crate::cli::LabArgs;
use crate::doctor::{self, Finding, Level};

/// Check this host for the lab and say what to do about each problem.
///
/// Checks: libvirt reachable on the URI; /dev/kvm usable and real (vmx/svm) or the tcg
/// fallback; nested virtualization for the compute node's own guests; memory and disk for
/// the lab; the pool directory reachable by the hypervisor's user; the image cached and
/// verified; name and subnet clashes. Exits 0 when the lab can come up.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON: [{check, level (ok|warn|fail), detail, fix}].
    #[arg(long)]
    json: bool,
}

pub fn run(lab: &LabArgs, args: Args) -> anyhow::Result<()> {
    let t = lab.target()?;
    let (pool_dir, _) = crate::app::host_dirs(&t.uri, &t.lab.name, t.pool_root.as_deref());
    let mut findings = vec![doctor::accel(), doctor::nested()];
    match t.connect() {
        Ok(hv) => {
            findings.push(doctor::libvirt(&t.uri, &Ok(())));
            findings.extend(doctor::with_libvirt(
                &t.lab,
                &hv,
                crate::app::is_local(&t.uri),
            ));
        }
        Err(e) => findings.push(Finding {
            check: "libvirt",
            level: Level::Fail,
            detail: format!("{e:#}"),
            fix: "start libvirtd, join the libvirt group, or pass --connect qemu:///session".into(),
        }),
    }
    if crate::app::is_local(&t.uri) {
        let root = pool_dir.parent().unwrap_or(&pool_dir);
        findings.push(doctor::disk(&t.lab, root, doctor::free_space(root)));
        findings.push(doctor::traversable(&pool_dir));
    }
    findings.push(doctor::image(
        &t.lab,
        crate::cache::Cache::open()?.path_for(&t.lab.image.name),
    ));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
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
        Err(
            crate::cli::HostProblem("the lab cannot come up here: fix the failures above".into())
                .into(),
        )
    }
}

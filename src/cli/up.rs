//! `lab up`: parse and delegate to [`crate::app::up`].

use std::path::PathBuf;

use crate::cli::output::{self, Screen, print_checks};
use crate::cli::{AccelArg, LabArgs};
use crate::progress::{Event, Progress};

/// Create the lab on libvirt, boot its nodes and provision them
///
/// Re-running it changes nothing; a stopped lab (`lab stop`, a host reboot) is started as
/// `lab start` does, then goes on. Creates (only what is missing): a storage pool with the
/// image, a cloud-init seed and a disk overlay per node, the networks, and the domains,
/// booted concurrently. Before creating anything it checks that no object with the lab's
/// names belongs to someone else, that the networks do not overlap other libvirt networks or
/// host routes, and that the host has the memory. If a step fails, what this run created is
/// removed again. Then it waits for SSH and cloud-init, provisions the OpenStack base
/// services step by step, verifies them from the compute node, and saves the snapshot
/// `lab-up` that a bare `lab reset` returns to.
///
/// With --stop-before STEP (`lab steps` lists them) it does only the steps the guide puts
/// before STEP, on every node, saves the snapshot `before-STEP`, and prints the guide's
/// commands for STEP and the steps after it, with this lab's addresses and passwords: the
/// student types them, `lab verify STEP` checks the work, `lab reset before-STEP` starts the
/// step again, and a later `lab up` goes on from there (what the student did right is `ok`).
///
/// Examples:
///   lab image build debian12 --full && lab up --lab openstack-debian12
///   lab up --lab openstack-debian12 --stop-before mq     # learn RabbitMQ by hand
///   lab up --lab openstack-ocata --no-provision
///   lab up --recreate compute1               # after changing compute1 in the lab file
///   lab up -c qemu:///session --lab openstack-ocata --timeout 1800
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Domain type: auto (kvm only on real hardware virtualization), kvm or tcg.
    #[arg(long, value_enum, default_value = "auto")]
    accel: AccelArg,
    /// Use this qcow2 file as the base image instead of the cached one (`lab image list`).
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// Rebuild this node from the image (new disk, new cloud-init instance-id), then go on
    /// as usual; repeat for several. The way to apply a changed lab file to a node.
    #[arg(long, value_name = "NODE")]
    recreate: Vec<String>,
    /// Stop once the nodes are defined and running (no SSH provisioning).
    #[arg(long, conflicts_with = "stop_before")]
    no_provision: bool,
    /// Do the steps before STEP only, save snapshot before-STEP, print the guide from STEP.
    #[arg(long, value_name = "STEP")]
    stop_before: Option<String>,
    /// Seconds to wait for the nodes to answer SSH with cloud-init finished.
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    timeout: u64,
}

pub fn run(lab: &LabArgs, args: Args) -> crate::failure::Result<()> {
    let target = lab.target_for_up()?;
    let screen = Screen::new(lab.json);
    for note in &target.notes {
        screen.event(Event::Note(note.to_string()));
    }
    let timeouts = crate::cli::timeouts(args.timeout);
    let provision = (!args.no_provision).then_some(crate::app::Provisioning {
        timeouts: &timeouts,
        stop_before: args.stop_before.as_deref(),
    });
    let report = crate::app::up(
        &target,
        args.accel.resolve(&screen),
        args.image.as_deref(),
        &args.recreate,
        provision,
        &screen,
    )?;
    drop(screen);
    let fields = json(&target, &report);
    output::result(lab.json, "up", fields, || print_report(&target, &report));
    Ok(())
}

/// What `lab up` did, as text.
fn print_report(target: &crate::app::Target, report: &crate::app::UpReport) {
    if let Some(started) = &report.started {
        println!(
            "lab {} was stopped: {} as `{}` does",
            target.lab.name,
            crate::cli::power::started_words(&target.lab, started),
            target.command("start")
        );
    }
    print_checks(&report.checks);
    if let Some(stopped) = &report.stopped {
        print_stopped(target, stopped, report.snapshot_saved);
        return;
    }
    let what = if report.changed || !report.steps.is_empty() {
        "is up"
    } else {
        "was already up: nothing changed"
    };
    println!("lab {} {what} on {}", target.lab.name, target.uri);
    if report.snapshot_saved {
        println!(
            "snapshot {} saved: `{}` returns to it",
            crate::lifecycle::UP_SNAPSHOT,
            target.command("reset")
        );
    }
}

/// What `lab up` did, as the fields of its JSON result: `state` is `up`, `already_up`
/// (nothing changed), `stopped_before` (`--stop-before`) or `past_step` (its checks
/// passed already); `snapshot` the one this run saved.
fn json(target: &crate::app::Target, report: &crate::app::UpReport) -> serde_json::Value {
    let state = match &report.stopped {
        Some(s) if s.already_done => "past_step",
        Some(_) => "stopped_before",
        None if report.changed || !report.steps.is_empty() => "up",
        None => "already_up",
    };
    let snapshot = match &report.stopped {
        Some(s) => s.snapshot.as_str(),
        None => crate::lifecycle::UP_SNAPSHOT,
    };
    let (flag, instance) = (target.choice.flag(), target.instance.as_deref());
    let stopped = report.stopped.as_ref().map(|s| {
        serde_json::json!({
            "step": s.step,
            "snapshot": s.snapshot,
            "already_done": s.already_done,
            "guide": crate::app::name_the_lab(&s.guide, &flag, instance),
        })
    });
    serde_json::json!({
        "lab": target.lab.name,
        "instance": target.instance,
        "uri": target.uri,
        "state": state,
        "changed": report.changed,
        "started": report.started.as_ref().map(crate::cli::power::started_json),
        "steps": report.steps,
        "checks": report.checks,
        "snapshot": report.snapshot_saved.then_some(snapshot),
        "stopped": stopped,
    })
}

/// Where `--stop-before` left the lab, and the guide from there.
pub fn print_stopped(target: &crate::app::Target, stopped: &crate::app::Stopped, saved: bool) {
    let step = &stopped.step;
    if stopped.already_done {
        println!(
            "lab {} is past step {step}: its checks pass already, so no snapshot {} was saved (`{}` starts over)",
            target.lab.name,
            stopped.snapshot,
            target.command("down")
        );
    } else {
        println!(
            "lab {} stopped before step {step} on {}: the steps before it are done and verified",
            target.lab.name, target.uri
        );
        let how = if saved {
            "saved"
        } else {
            "kept (saved earlier)"
        };
        println!(
            "snapshot {} {how}: `{}` returns to the start of the step",
            stopped.snapshot,
            target.command(&format!("reset {}", stopped.snapshot))
        );
    }
    println!();
    // Its `lab ...` commands name this lab (and instance) when a bare one would pick another.
    let (flag, instance) = (target.choice.flag(), target.instance.as_deref());
    print!(
        "{}",
        crate::app::name_the_lab(&stopped.guide, &flag, instance)
    );
}

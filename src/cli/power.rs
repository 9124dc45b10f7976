//! `lab stop` and `lab start`: parse, delegate to [`crate::app::stop`] and
//! [`crate::app::start`], print.

use crate::cli::LabArgs;
use crate::cli::output::{self, Screen};
use crate::lifecycle::{StartReport, StopMode, StopReport};

/// Stop the lab and free its memory; `lab start` brings it back as it was.
///
/// Each node's memory is saved to the host's disk (libvirt's managed save) and its QEMU
/// process ends: `lab start` restores every node where it was, clocks set, in seconds.
/// With --shutdown the guests power off cleanly instead (the guest agent, else ACPI; by
/// force after --timeout): `lab start` then boots them. The networks, disks and lab-wide
/// snapshots stay; `lab status` shows each node as `saved` or `shut off`.
///
/// Examples:
///   lab stop                       # end of the session: 6 GiB back, the exercise kept
///   lab stop --shutdown            # before a host upgrade
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct StopArgs {
    /// Power the guests off cleanly instead of saving their memory.
    #[arg(long)]
    shutdown: bool,
    /// With --shutdown: seconds a guest may take to power off before it is forced off.
    #[arg(
        long,
        default_value_t = 120,
        value_name = "SECONDS",
        requires = "shutdown"
    )]
    timeout: u64,
}

/// Start a stopped lab: every node back, clocks set, ready to verify.
///
/// Starts the lab's networks and pools where they are inactive (after a host reboot), then
/// every node: a saved one is restored where `lab stop` left it, a shut-off one booted (and
/// waited for until its services run). Then each changed node's clock is set to the host's
/// and chrony follows its source again, so `lab verify` passes at once.
///
/// Examples:
///   lab start && lab verify
///   lab start --lab openstack-debian12 --instance s2
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct StartArgs {
    /// Seconds a booted node may take to answer SSH.
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    timeout: u64,
}

impl StopArgs {
    pub fn mode(&self) -> StopMode {
        if self.shutdown {
            StopMode::Shutdown {
                grace: std::time::Duration::from_secs(self.timeout),
            }
        } else {
            StopMode::Save
        }
    }
}

impl StartArgs {
    pub fn timeouts(&self) -> crate::ssh::Timeouts {
        crate::cli::timeouts(self.timeout)
    }
}

pub fn stop(lab: &LabArgs, args: StopArgs) -> crate::failure::Result<()> {
    let t = lab.target()?;
    let start = std::time::Instant::now();
    let screen = Screen::new(lab.json);
    let report = crate::app::stop(&t, args.mode(), &screen)?;
    drop(screen);
    let seconds = start.elapsed().as_secs_f64();
    let fields = serde_json::json!({
        "lab": t.lab.name,
        "instance": t.instance,
        "uri": t.uri,
        "mode": match args.mode() {
            StopMode::Save => "save",
            StopMode::Shutdown { .. } => "shutdown",
        },
        "stopped": report.stopped,
        "forced": report.forced,
        "already": report.already,
        "seconds": seconds,
    });
    output::result(lab.json, "stop", fields, || {
        println!(
            "lab {} {} in {seconds:.1}s: `{}` brings it back",
            t.lab.name,
            stopped_words(&report, args.mode()),
            t.command("start")
        );
    });
    Ok(())
}

/// `stopped (memory saved)`, `stopped (shut down; compute1 forced off)`, `was stopped`.
pub fn stopped_words(r: &StopReport, mode: StopMode) -> String {
    if r.stopped.is_empty() {
        return "was stopped already".into();
    }
    match mode {
        StopMode::Save => "stopped (memory saved)".into(),
        StopMode::Shutdown { .. } if r.forced.is_empty() => "stopped (shut down)".into(),
        StopMode::Shutdown { .. } => {
            format!("stopped (shut down; forced off: {})", r.forced.join(", "))
        }
    }
}

pub fn start(lab: &LabArgs, args: StartArgs) -> crate::failure::Result<()> {
    let t = lab.target()?;
    let begin = std::time::Instant::now();
    let screen = Screen::new(lab.json);
    let started = crate::app::start(&t, &args.timeouts(), &screen)?;
    drop(screen);
    let seconds = begin.elapsed().as_secs_f64();
    let mut fields = started_json(&started);
    fields["lab"] = t.lab.name.clone().into();
    fields["instance"] = t.instance.clone().into();
    fields["uri"] = t.uri.clone().into();
    fields["seconds"] = seconds.into();
    output::result(lab.json, "start", fields, || {
        println!(
            "lab {} {} in {seconds:.1}s",
            t.lab.name,
            started_words(&t.lab, &started),
        );
    });
    Ok(())
}

/// What a start did, as JSON: the domains `restored`, `booted`, `resumed` and `running`
/// already, the pools and networks `started`, and whether it finished a start cut short
/// (`resumed_start`).
pub fn started_json(started: &crate::app::Started) -> serde_json::Value {
    let r: &StartReport = &started.libvirt;
    serde_json::json!({
        "restored": r.restored,
        "booted": r.booted,
        "resumed": r.resumed,
        "running": r.running,
        "started": r.started_objects,
        "resumed_start": started.resumed_start,
    })
}

/// `started (restored: a, b)`, `started (booted: a; started: net)`, `was running already`.
pub fn started_words(lab: &crate::model::Lab, started: &crate::app::Started) -> String {
    let r: &StartReport = &started.libvirt;
    if !r.changed() && started.resumed_start {
        return "is back: the start cut short was finished (nodes ready, clocks set)".into();
    }
    if !r.changed() {
        return "was running already".into();
    }
    let short = |d: &String| {
        let node = lab
            .nodes
            .iter()
            .find(|n| crate::names::domain(&lab.name, &n.name) == *d);
        node.map_or(d.clone(), |n| n.name.clone())
    };
    let parts: Vec<String> = [
        ("restored", &r.restored),
        ("booted", &r.booted),
        ("resumed", &r.resumed),
        ("started", &r.started_objects),
    ]
    .into_iter()
    .filter(|(_, l)| !l.is_empty())
    .map(|(what, l)| {
        let names: Vec<String> = if what == "started" {
            l.to_vec()
        } else {
            l.iter().map(short).collect()
        };
        format!("{what}: {}", names.join(", "))
    })
    .collect();
    format!("started ({})", parts.join("; "))
}

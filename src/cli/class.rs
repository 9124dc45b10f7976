//! `lab class ...`: parse, delegate to [`crate::app`]'s class operations, print.

use crate::app::{Class, UpReport};
use crate::class::{ClassFile, Seat};
use crate::cli::{AccelArg, LabArgs, output::Screen};
use crate::lifecycle;

/// N instances of the lab for a class, spread over libvirt hosts.
///
/// `lab class up --hosts qemu+ssh://a/system,qemu+ssh://b/system --count 12` places twelve
/// instances (s1 ... s12) by the memory and vCPUs each host has left, records the placement
/// in the class file (STATE/classes/CLASS.toml), then brings them up, a few at once per
/// host. Every other verb acts on all instances, or on one (`lab class reset s3`); each
/// instance is also an ordinary `--instance` of the lab on its host (`lab -c URI ssh
/// controller --instance s3`).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Place the instances, record them, bring them up (run again: goes on with the record).
    Up(UpArgs),
    /// Each instance: its host and its nodes' state, read from libvirt.
    Status(Args),
    /// Revert every instance (or one) to a lab-wide snapshot, clocks set.
    Reset(ResetArgs),
    /// Remove every instance (or one); the class file goes with the last.
    Down(OneArgs),
    /// OpenSSH config blocks for every instance's nodes (`Host lab-<lab>-sN-<node>`).
    SshConfig(Args),
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The class's name: several classes can live side by side.
    #[arg(long, default_value = "class")]
    class: String,
    /// At most this many instances are brought up (or down, or reset) at once per host.
    #[arg(long, default_value_t = 2, value_name = "N")]
    per_host: usize,
}

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    common: Args,
    /// The libvirt hosts, comma-separated. Default: the --connect URI.
    #[arg(long, value_delimiter = ',', value_name = "URI,...")]
    hosts: Vec<String>,
    /// How many instances (only for a class not yet recorded).
    #[arg(long, value_name = "N")]
    count: Option<usize>,
    /// Print the placement and stop: nothing is recorded or created.
    #[arg(long)]
    dry_run: bool,
    /// Create and boot only (no SSH wait, provisioning or checks).
    #[arg(long)]
    no_provision: bool,
    #[arg(long, value_enum, default_value = "auto")]
    accel: AccelArg,
    /// Seconds each instance's nodes may take to answer SSH with cloud-init finished.
    #[arg(long, default_value_t = 1800, value_name = "SECONDS")]
    timeout: u64,
}

#[derive(Debug, clap::Args)]
pub struct OneArgs {
    #[command(flatten)]
    common: Args,
    /// Only this instance (s1, s2, ...).
    instance: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    #[command(flatten)]
    one: OneArgs,
    /// The lab-wide snapshot to return to.
    #[arg(long, default_value = lifecycle::UP_SNAPSHOT)]
    snapshot: String,
}

fn class(lab: &LabArgs, args: &Args) -> Class {
    Class {
        name: args.class.clone(),
        subnet_pool: lab.subnet_pool,
        pool_root: lab.pool_root.clone(),
    }
}

pub fn run(lab: &LabArgs, cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Up(args) => up(lab, args),
        Command::Status(args) => status(&class(lab, &args)),
        Command::Reset(args) => {
            let one = &args.one;
            let c = class(lab, &one.common);
            let file = c.file()?;
            let seats = c.seats(&file, one.instance.as_deref())?;
            let screen = Screen::new(false);
            let per_host = one.common.per_host;
            let results =
                crate::app::reset_seats(&c, &file, &seats, &args.snapshot, per_host, &screen);
            drop(screen);
            report(&results, |_| format!("reset to {}", args.snapshot))
        }
        Command::Down(args) => {
            let c = class(lab, &args.common);
            let file = c.file()?;
            let seats = c.seats(&file, args.instance.as_deref())?;
            let screen = Screen::new(false);
            let results = crate::app::down_seats(&c, &file, &seats, args.common.per_host, &screen);
            drop(screen);
            report(&results?, |n| format!("down ({n} objects removed)"))
        }
        Command::SshConfig(args) => {
            let c = class(lab, &args);
            let file = c.file()?;
            for seat in &file.instances {
                let t = c.target(&file.lab, seat, crate::app::Purpose::Use)?;
                let (identity, known_hosts) = crate::app::access_files(&t)?;
                let jump = crate::ssh::config::remote_host(&t.uri)?;
                let config = crate::render::access::ssh_config;
                print!("{}", config(&t.lab, &identity, &known_hosts, jump.as_ref()));
            }
            Ok(())
        }
    }
}

fn up(lab: &LabArgs, args: UpArgs) -> anyhow::Result<()> {
    let c = class(lab, &args.common);
    let hosts = if args.hosts.is_empty() {
        vec![lab.uri.clone()]
    } else {
        args.hosts.clone()
    };
    let file = crate::app::plan_class(&c, &lab.choice(), &hosts, args.count)?;
    print_placement(&c, &file);
    if args.dry_run {
        return Ok(());
    }
    crate::app::record_class(&c, &file)?;
    let timeouts = crate::cli::timeouts(args.timeout);
    let provision = (!args.no_provision).then_some(&timeouts);
    let screen = Screen::new(false);
    let accel = args.accel.resolve();
    let per_host = args.common.per_host;
    let results = crate::app::up_seats(
        &c,
        &file,
        &file.instances,
        per_host,
        accel,
        provision,
        &screen,
    );
    drop(screen);
    report(&results, |r: &UpReport| match r.checks.len() {
        0 => "up".to_string(),
        n => format!("up, {n} checks passed"),
    })
}

fn print_placement(c: &Class, file: &ClassFile) {
    println!(
        "class {}: {} instances of {}",
        c.name,
        file.instances.len(),
        file.lab
    );
    for seat in &file.instances {
        println!("  {:<6} {}", seat.instance, seat.uri);
    }
}

fn status(c: &Class) -> anyhow::Result<()> {
    let file = c.file()?;
    println!("class {}: {}", c.name, file.lab);
    for seat in &file.instances {
        let line = match c
            .target(&file.lab, seat, crate::app::Purpose::Use)
            .and_then(|t| crate::app::status(&t))
        {
            Ok(st) => {
                let nodes: Vec<String> = st
                    .nodes
                    .iter()
                    .map(|n| match n.state {
                        Some(s) => format!("{} {s}", n.name),
                        None => format!("{} not created", n.name),
                    })
                    .collect();
                nodes.join(", ")
            }
            Err(e) => format!("error: {e:#}"),
        };
        println!("  {:<6} {:<28} {line}", seat.instance, seat.uri);
    }
    Ok(())
}

/// One line per seat; an error when any failed.
fn report<T>(
    results: &[(Seat, anyhow::Result<T>)],
    done: impl Fn(&T) -> String,
) -> anyhow::Result<()> {
    let mut failed = 0;
    for (seat, r) in results {
        let what = match r {
            Ok(v) => done(v),
            Err(e) => {
                failed += 1;
                format!("FAILED: {e:#}")
            }
        };
        println!("{:<6} {:<28} {what}", seat.instance, seat.uri);
    }
    match failed {
        0 => Ok(()),
        n => anyhow::bail!(
            "{n} of {} instances failed (above): fix the cause and run the same `lab class` command again",
            results.len()
        ),
    }
}

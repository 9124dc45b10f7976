//! `lab class ...`: parse, delegate to [`crate::app`]'s class operations, print.

use crate::app::{Class, UpReport};
use crate::class::{ClassFile, Seat};
use crate::cli::output::{self, Screen};
use crate::cli::{AccelArg, LabArgs};
use crate::failure::Failure;
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
    /// Revert every instance (or one) to a lab-wide snapshot, clocks set:
    /// `lab class reset before-mq`, `lab class reset s3`, `lab class reset before-mq s3`.
    Reset(ResetArgs),
    /// Check every instance (all checks, or those of the steps named): one table, a row per
    /// check, a column per instance (pass, FAIL, or unreachable), then each failure's hint.
    /// Exits 4 when a check failed or an instance was not reachable.
    ///
    /// With --json: {seats: [{instance, uri, checks: [...], error}]}.
    Verify(VerifyArgs),
    /// Stop every instance (or one): `lab stop` on each, memory saved (or --shutdown).
    Stop(SeatStopArgs),
    /// Start every instance (or one): `lab start` on each, clocks set, ready to verify.
    Start(SeatStartArgs),
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
    #[arg(long, conflicts_with = "stop_before")]
    no_provision: bool,
    /// Bring every instance to the start of STEP (`lab up --stop-before STEP` on each).
    #[arg(long, value_name = "STEP")]
    stop_before: Option<String>,
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
pub struct SeatStopArgs {
    #[command(flatten)]
    one: OneArgs,
    #[command(flatten)]
    stop: crate::cli::power::StopArgs,
}

#[derive(Debug, clap::Args)]
pub struct SeatStartArgs {
    #[command(flatten)]
    one: OneArgs,
    #[command(flatten)]
    start: crate::cli::power::StartArgs,
}

#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    #[command(flatten)]
    common: Args,
    /// A snapshot to return to (default lab-up) and/or one instance (s1, s2, ...), in any
    /// order: a word that names an instance of the class is the instance.
    #[arg(value_name = "SNAPSHOT|INSTANCE", num_args = 0..=2)]
    words: Vec<String>,
    /// The lab-wide snapshot to return to.
    #[arg(long, conflicts_with = "words")]
    snapshot: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    common: Args,
    /// Only the checks of these steps (`lab steps`; `mq` takes `mq-user` too).
    #[arg(value_name = "STEP")]
    steps: Vec<String>,
    /// Seconds to wait for each instance's nodes to answer SSH.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    timeout: u64,
}

fn class(lab: &LabArgs, args: &Args) -> Class {
    Class {
        name: args.class.clone(),
        subnet_pool: lab.subnet_pool,
        pool_root: lab.pool_root.clone(),
    }
}

pub fn run(lab: &LabArgs, cmd: Command) -> crate::failure::Result<()> {
    let json = lab.json;
    match cmd {
        Command::Up(args) => up(lab, args),
        Command::Status(args) => status(&class(lab, &args)),
        Command::Reset(args) => {
            let c = class(lab, &args.common);
            let file = c.file()?;
            let (snapshot, instance) = reset_words(&file, &args);
            let seats = c.seats(&file, instance.as_deref())?;
            let screen = Screen::new(json);
            let per_host = args.common.per_host;
            let results = crate::app::reset_seats(&c, &file, &seats, &snapshot, per_host, &screen);
            drop(screen);
            let out = Report::new(json, "class reset", &c, &file);
            out.seats(&results, |_| format!("reset to {snapshot}"))
        }
        Command::Verify(args) => verify(lab, args),
        Command::Stop(args) => {
            let c = class(lab, &args.one.common);
            let file = c.file()?;
            let seats = c.seats(&file, args.one.instance.as_deref())?;
            let (screen, mode) = (Screen::new(json), args.stop.mode());
            let per_host = args.one.common.per_host;
            let results = crate::app::stop_seats(&c, &file, &seats, mode, per_host, &screen);
            drop(screen);
            let out = Report::new(json, "class stop", &c, &file);
            out.seats(&results, |r| crate::cli::power::stopped_words(r, mode))
        }
        Command::Start(args) => {
            let c = class(lab, &args.one.common);
            let file = c.file()?;
            let seats = c.seats(&file, args.one.instance.as_deref())?;
            let (screen, timeouts) = (Screen::new(json), args.start.timeouts());
            let per_host = args.one.common.per_host;
            let results = crate::app::start_seats(&c, &file, &seats, per_host, &timeouts, &screen);
            drop(screen);
            let lab_of = |seat: &Seat| c.target(&file.lab, seat, crate::app::Purpose::Use);
            let words = |seat: &Seat, r: &crate::app::Started| match lab_of(seat) {
                Ok(t) => crate::cli::power::started_words(&t.lab, r),
                Err(_) => "started".to_string(),
            };
            Report::new(json, "class start", &c, &file).seats_with(&results, words)
        }
        Command::Down(args) => {
            let c = class(lab, &args.common);
            let file = c.file()?;
            let seats = c.seats(&file, args.instance.as_deref())?;
            let screen = Screen::new(json);
            let results = crate::app::down_seats(&c, &file, &seats, args.common.per_host, &screen);
            drop(screen);
            let out = Report::new(json, "class down", &c, &file);
            out.seats(&results?, |n| format!("down ({n} objects removed)"))
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

fn up(lab: &LabArgs, args: UpArgs) -> crate::failure::Result<()> {
    let c = class(lab, &args.common);
    let hosts = if args.hosts.is_empty() {
        vec![lab.uri.clone()]
    } else {
        args.hosts.clone()
    };
    let file = crate::app::plan_class(&c, &lab.choice(), &hosts, args.count)?;
    let mut out = Report::new(lab.json, "class up", &c, &file);
    if !lab.json {
        print_placement(&c, &file);
    }
    if args.dry_run {
        out.fields["dry_run"] = true.into();
        return out.seats::<UpReport>(&[], |_| String::new());
    }
    crate::app::record_class(&c, &file)?;
    let timeouts = crate::cli::timeouts(args.timeout);
    let provision = (!args.no_provision).then_some(crate::app::Provisioning {
        timeouts: &timeouts,
        stop_before: args.stop_before.as_deref(),
    });
    let screen = Screen::new(lab.json);
    let accel = args.accel.resolve(&screen);
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
    out.seats(&results, |r: &UpReport| {
        match (&r.stopped, r.checks.len()) {
            (Some(s), n) => format!(
                "stopped before {} ({n} checks passed), {}",
                s.step, s.snapshot
            ),
            (None, 0) => "up".to_string(),
            (None, n) => format!("up, {n} checks passed"),
        }
    })
}

/// The snapshot and the instance a `lab class reset` names: a word naming one of the
/// class's instances is the instance, another the snapshot.
fn reset_words(file: &ClassFile, args: &ResetArgs) -> (String, Option<String>) {
    let is_seat = |w: &String| file.instances.iter().any(|s| &s.instance == w);
    let instance = args.words.iter().find(|w| is_seat(w)).cloned();
    let snapshot = args
        .snapshot
        .clone()
        .or_else(|| args.words.iter().find(|w| !is_seat(w)).cloned())
        .unwrap_or_else(|| lifecycle::UP_SNAPSHOT.to_string());
    (snapshot, instance)
}

fn verify(lab: &LabArgs, args: VerifyArgs) -> crate::failure::Result<()> {
    let c = class(lab, &args.common);
    let file = c.file()?;
    let seats = c.seats(&file, None)?;
    let timeouts = crate::cli::timeouts(args.timeout);
    let screen = Screen::new(lab.json);
    let per_host = args.common.per_host;
    let results =
        crate::app::verify_seats(&c, &file, &seats, &args.steps, per_host, &timeouts, &screen);
    drop(screen);
    // A step the lab does not have is the same mistake on every seat: said once.
    if let Some(e) = results.iter().find_map(|(_, r)| {
        r.as_ref()
            .err()
            .and_then(|e| e.downcast_ref::<crate::provision::UnknownStep>())
    }) {
        return Err(e.clone().into());
    }
    let table: Vec<crate::cli::output::SeatChecks> = results
        .into_iter()
        .map(|(seat, r)| (seat.instance, r.map_err(|e| format!("{e:#}"))))
        .collect();
    if lab.json {
        let seats: Vec<serde_json::Value> = table
            .iter()
            .zip(&seats)
            .map(|((instance, r), seat)| {
                serde_json::json!({
                    "instance": instance,
                    "uri": seat.uri,
                    "checks": r.as_ref().ok(),
                    "error": r.as_ref().err(),
                })
            })
            .collect();
        output::print_json(&serde_json::json!({ "seats": seats }), true)?;
    } else {
        print!("{}", crate::cli::output::class_table(&table));
    }
    let failed: usize = table
        .iter()
        .map(|(_, r)| match r {
            Ok(checks) => checks.iter().filter(|c| !c.passed).count(),
            Err(_) => 1,
        })
        .sum();
    match failed {
        0 => Ok(()),
        _ => Err(crate::app::ChecksFailed {
            failed,
            total: table
                .iter()
                .map(|(_, r)| r.as_ref().map_or(1, Vec::len))
                .sum(),
        }
        .into()),
    }
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

fn status(c: &Class) -> crate::failure::Result<()> {
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

/// The final report of a class command: a line per seat, or with `--json` one result
/// `{"kind":"result","command":..,"class":..,"lab":..,"placement":[{instance,uri}],
/// "seats":[{instance,uri,outcome,error}],"failed":N}`.
struct Report {
    json: bool,
    command: &'static str,
    fields: serde_json::Value,
}

impl Report {
    fn new(json: bool, command: &'static str, c: &Class, file: &ClassFile) -> Report {
        let fields = serde_json::json!({
            "class": c.name,
            "lab": file.lab,
            "placement": file.instances,
        });
        Report {
            json,
            command,
            fields,
        }
    }

    /// One line per seat; an error when any failed.
    fn seats<T>(
        self,
        results: &[(Seat, crate::failure::Result<T>)],
        done: impl Fn(&T) -> String,
    ) -> crate::failure::Result<()> {
        self.seats_with(results, |_, v| done(v))
    }

    /// [`Report::seats`], with each line's words from the seat too.
    fn seats_with<T>(
        mut self,
        results: &[(Seat, crate::failure::Result<T>)],
        done: impl Fn(&Seat, &T) -> String,
    ) -> crate::failure::Result<()> {
        let mut failed = 0;
        let mut lines = Vec::new();
        let mut seats = Vec::new();
        for (seat, r) in results {
            let (outcome, error) = match r {
                Ok(v) => (Some(done(seat, v)), None),
                Err(e) => {
                    failed += 1;
                    (None, Some(format!("{e:#}")))
                }
            };
            let what = match (&outcome, &error) {
                (Some(words), _) => words.clone(),
                (None, e) => format!("FAILED: {}", e.as_deref().unwrap_or_default()),
            };
            lines.push(format!("{:<6} {:<28} {what}", seat.instance, seat.uri));
            seats.push(serde_json::json!({
                "instance": seat.instance,
                "uri": seat.uri,
                "outcome": outcome,
                "error": error,
            }));
        }
        self.fields["seats"] = seats.into();
        self.fields["failed"] = failed.into();
        output::result(self.json, self.command, self.fields, || {
            lines.iter().for_each(|l| println!("{l}"));
        });
        match failed {
            0 => Ok(()),
            n => Err(Failure::host(format!(
                "{n} of {} instances failed (above): fix the cause and run the same `lab class` command again",
                results.len()
            ))),
        }
    }
}

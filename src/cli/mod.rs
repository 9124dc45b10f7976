//! The command line: clap definitions and one module per verb that parses and delegates.

mod access;
mod class;
mod console;
mod doctor;
mod down;
mod guests;
mod image;
mod list;
pub mod output;
mod plan;
mod power;
mod snapshot;
mod status;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::failure::{ExitClass, Failure, Hint};

use crate::model::units::Cidr;

/// Build an OpenStack learning lab on this machine with libvirt.
///
/// A lab is a TOML file (see labs/reference.toml): an image, a NAT and an isolated network,
/// a controller and compute nodes with static addresses. `lab plan` shows what a lab will
/// create without touching libvirt; `lab up` creates it; `lab down` removes it.
///
/// Typical session:
///   lab plan  --lab openstack-debian12       # what will be created
///   lab up    --lab openstack-debian12       # create, boot, provision: the current lab now
///   lab ssh controller 'systemctl status mariadb | head'
///
/// Learning the guide step by step:
///   lab steps                                # the guide's steps, their checks
///   lab up --stop-before mq                  # everything before RabbitMQ; prints its commands
///   lab verify mq                            # the student's work checked, with hints
///   lab reset before-mq                      # back to the start of the step
///
///   lab snapshot save clean                  # before an exercise
///   lab reset clean                          # back to it, in seconds
///   lab stop                                 # end of the day: memory freed, work kept
///   lab start                                # back where it was, clocks set, in seconds
///   lab down                                 # remove everything the lab owns
///
/// Which lab, without --lab: $LAB_FILE, else ./lab.toml, else the lab the last `lab up`
/// brought up, else openstack-ocata.
#[derive(Debug, Parser)]
#[command(name = "lab", version, propagate_version = true, verbatim_doc_comment)]
pub struct Cli {
    #[command(flatten)]
    pub lab: LabArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Plan(plan::Args),
    Up(up::Args),
    Down(down::Args),
    Stop(power::StopArgs),
    Start(power::StartArgs),
    Status(status::Args),
    List(list::Args),
    #[command(subcommand)]
    Snapshot(snapshot::Command),
    Reset(snapshot::ResetArgs),
    #[command(subcommand)]
    Image(image::Command),
    Provision(guests::ProvisionArgs),
    Verify(guests::VerifyArgs),
    Steps(guests::StepsArgs),
    Guide(guests::GuideArgs),
    Ssh(guests::SshArgs),
    Console(console::ConsoleArgs),
    Logs(console::LogsArgs),
    Doctor(doctor::Args),
    /// Print shell completions: `lab completions bash > /etc/bash_completion.d/lab`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `lab man | man -l -`.
    Man,
    Creds(access::CredsArgs),
    SshConfig(access::SshConfigArgs),
    Inventory(access::InventoryArgs),
    #[command(subcommand)]
    Class(class::Command),
}

impl Command {
    /// Whether the command changes libvirt, guests or files: those stop cleanly on SIGINT,
    /// SIGTERM and SIGHUP ([`crate::interrupt`]); the others end at once as usual.
    fn changes_things(&self) -> bool {
        match self {
            Command::Up(_)
            | Command::Down(_)
            | Command::Stop(_)
            | Command::Start(_)
            | Command::Reset(_)
            | Command::Provision(_)
            | Command::Image(_)
            | Command::Class(_) => true,
            Command::Snapshot(cmd) => !matches!(cmd, snapshot::Command::List),
            _ => false,
        }
    }
}

/// Which lab, which libvirt host, and JSON or text: accepted anywhere on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct LabArgs {
    /// Lab file, or the name of a lab shipped in labs/ (openstack-ocata, openstack-debian12).
    /// Default: $LAB_FILE, else ./lab.toml, else the lab the last `lab up` chose, else
    /// openstack-ocata.
    #[arg(long, short = 'l', value_name = "FILE|NAME", global = true)]
    pub lab: Option<String>,
    /// libvirt URI, as virsh takes it (qemu:///system, qemu:///session, qemu+ssh://host/system).
    #[arg(long = "connect", short = 'c', env = "LIBVIRT_DEFAULT_URI", default_value = crate::app::DEFAULT_URI, global = true)]
    pub uri: String,
    /// Directory under which the lab's storage pool lives on the hypervisor host.
    /// Default: /var/lib/libvirt/images (qemu:///session: ~/.local/share/libvirt/images).
    #[arg(long, value_name = "DIR", global = true)]
    pub pool_root: Option<PathBuf>,
    /// Another copy of the lab on the same host, e.g. one per student: `lab up --instance s1`
    /// makes it (its own libvirt objects, bridges, MACs and external subnet; the internal
    /// network keeps the guide's addresses), every other command then takes the same flag.
    #[arg(
        long,
        short = 'i',
        value_name = "NAME",
        env = "LAB_INSTANCE",
        global = true
    )]
    pub instance: Option<String>,
    /// Where `up` takes a new instance's external subnet from: the first subnet of the lab's
    /// size in this pool that no libvirt network, host route or other instance uses.
    #[arg(long, value_name = "CIDR", env = "LAB_SUBNET_POOL", default_value = crate::model::instance::DEFAULT_POOL, global = true)]
    pub subnet_pool: Cidr,
    /// Write JSON. A changing command (up, down, stop, start, provision, snapshot save and
    /// delete, reset, image, class) writes its progress and notes on stderr as JSON lines
    /// ({"kind":..}) and its result on stdout as one line {"kind":"result","command":..};
    /// a reading command (status, list, plan, verify, steps, creds, doctor, snapshot list,
    /// image list, class verify) prints its report as JSON. A failure before that prints
    /// {"kind":"error","message":..,"exit":N} on stdout. Files and streams (guide, ssh,
    /// ssh-config, inventory, console, logs, man, completions) print as they are.
    #[arg(long, global = true)]
    pub json: bool,
}

impl LabArgs {
    /// The lab chosen by `--lab`, or else the way every command picks it.
    pub fn choice(&self) -> crate::app::LabChoice {
        crate::app::LabChoice::find(self.lab.as_deref())
    }

    /// The chosen lab (or instance, which must exist).
    pub fn target(&self) -> crate::failure::Result<crate::app::Target> {
        self.resolve(crate::app::Purpose::Use)
    }

    /// The chosen lab for `lab up`: a new instance is placed on the host now.
    pub fn target_for_up(&self) -> crate::failure::Result<crate::app::Target> {
        self.resolve(crate::app::Purpose::Up)
    }

    /// The chosen lab for `lab plan`: an instance no `up` made yet is previewed.
    pub fn target_for_plan(&self) -> crate::failure::Result<crate::app::Target> {
        self.resolve(crate::app::Purpose::Preview)
    }

    /// The chosen lab for `lab down`: an instance whose record is gone is named all the same.
    pub fn target_for_down(&self) -> crate::failure::Result<crate::app::Target> {
        self.resolve(crate::app::Purpose::Down)
    }

    fn resolve(&self, purpose: crate::app::Purpose) -> crate::failure::Result<crate::app::Target> {
        let instance = self
            .instance
            .as_ref()
            .map(|name| crate::app::InstanceChoice {
                name: name.clone(),
                pool: self.subnet_pool,
            });
        let pool_root = self.pool_root.clone();
        crate::app::Target::resolve(
            self.choice(),
            &self.uri,
            pool_root,
            instance.as_ref(),
            purpose,
        )
    }
}

/// How guests run: `auto` picks kvm only when /dev/kvm opens and the CPU has vmx or svm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccelArg {
    Auto,
    Kvm,
    Tcg,
}

impl AccelArg {
    /// The accel to use; `auto` is detected, and a fallback to tcg is a note to `progress`.
    pub fn resolve(self, progress: &dyn crate::progress::Progress) -> crate::render::Accel {
        match self {
            AccelArg::Kvm => crate::render::Accel::Kvm,
            AccelArg::Tcg => crate::render::Accel::Tcg,
            AccelArg::Auto => {
                let choice = crate::host::detect_accel();
                if choice.accel == crate::render::Accel::Tcg {
                    progress.event(crate::progress::Event::Note(choice.reason));
                }
                choice.accel
            }
        }
    }
}

/// Exit status: 0 success, 2 usage or lab-file error, 3 host problem (libvirt, files),
/// 4 guest problem (SSH, provisioning, a failed check), 130 stopped: each error's
/// [`ExitClass`].
pub mod exit {
    use crate::failure::ExitClass;
    pub const USAGE: u8 = ExitClass::Usage.code();
    pub const HOST: u8 = ExitClass::Host.code();
    pub const GUEST: u8 = ExitClass::Guest.code();
    /// Stopped by SIGINT, SIGTERM or SIGHUP (as a shell reports Ctrl-C).
    pub const INTERRUPTED: u8 = ExitClass::Interrupted.code();
}

/// The exit class of a failure: its own, or a stop when one was asked for meanwhile (the
/// work it cut may have failed as something else).
fn exit_class(err: &Failure) -> ExitClass {
    if crate::interrupt::interrupted() {
        ExitClass::Interrupted
    } else {
        err.class()
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.changes_things() {
        crate::interrupt::install();
    }
    let lab = &cli.lab;
    let result = match cli.command {
        Command::Plan(args) => plan::run(lab, args),
        Command::Up(args) => up::run(lab, args),
        Command::Down(args) => down::run(lab, args),
        Command::Stop(args) => power::stop(lab, args),
        Command::Start(args) => power::start(lab, args),
        Command::Status(args) => status::run(lab, args),
        Command::List(args) => list::run(lab, args),
        Command::Snapshot(cmd) => snapshot::run(lab, cmd),
        Command::Reset(args) => snapshot::reset(lab, args),
        Command::Image(cmd) => image::run(lab, cmd),
        Command::Provision(args) => guests::provision(lab, args),
        Command::Verify(args) => guests::verify(lab, args),
        Command::Steps(args) => guests::steps(lab, args),
        Command::Guide(args) => guests::guide(lab, args),
        Command::Ssh(args) => guests::ssh(lab, args),
        Command::Console(args) => console::console(lab, args),
        Command::Logs(args) => console::logs(lab, args),
        Command::Doctor(args) => doctor::run(lab, args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "lab", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(Into::into)
        }
        Command::Creds(args) => access::creds(lab, args),
        Command::SshConfig(args) => access::ssh_config(lab, args),
        Command::Inventory(args) => access::inventory(lab, args),
        Command::Class(cmd) => class::run(lab, cmd),
    };
    // Every connection is closed by now: libvirt's event thread ends before the process does.
    crate::libvirt::stop_event_loop();
    // Every `lab ...` command a message suggests names the lab when a bare one would pick
    // another.
    let flag = lab.choice().flag();
    let instance = lab.instance.as_deref();
    let Err(err) = result else {
        return ExitCode::SUCCESS;
    };
    let message = crate::app::name_the_lab(&format!("{err:#}"), &flag, instance);
    eprintln!("lab: {message}");
    let class = exit_class(&err);
    let hint = err.hint().map(|Hint::LookAtTheNodes| {
        let node = lab.choice().first_node();
        let hint = format!(
            "the nodes stay up for a look (`lab status`, `lab ssh {node}`, `lab logs {node}`, `lab console {node}`); fix the cause and re-run `lab up` or `lab provision` (done steps are kept), or `lab down`"
        );
        crate::app::name_the_lab(&hint, &flag, instance)
    });
    let hint = hint.filter(|_| class != ExitClass::Interrupted);
    if let Some(hint) = &hint {
        eprintln!("hint: {hint}");
    }
    let code = class.code();
    if lab.json
        && let Some(line) = output::error_json(&message, code, hint.as_deref())
    {
        println!("{line}");
    }
    ExitCode::from(code)
}

/// SSH timeouts with a readiness deadline of `ready_secs`.
pub fn timeouts(ready_secs: u64) -> crate::ssh::Timeouts {
    crate::ssh::Timeouts {
        ready: std::time::Duration::from_secs(ready_secs),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::libvirt::LibvirtError;
    use crate::lifecycle::LifecycleError;

    fn lost() -> LibvirtError {
        let call = LibvirtError::Call {
            action: "start domain",
            object: "lab-x-controller".into(),
            message: "End of file while reading data: Input/output error".into(),
            code: 38,
        };
        call.on_connection("qemu:///system", false)
    }

    #[test]
    fn json_is_one_global_flag_before_or_after_the_verb() {
        let json = |line: &[&str]| Cli::try_parse_from(line).unwrap().lab.json;
        assert!(json(&["lab", "--json", "up"]));
        assert!(json(&["lab", "up", "--json"]));
        assert!(json(&["lab", "status", "--json"]));
        assert!(json(&["lab", "snapshot", "list", "--json"]));
        assert!(json(&["lab", "image", "list", "--json"]));
        assert!(json(&["lab", "class", "verify", "--json", "mq"]));
        assert!(!json(&["lab", "down"]));
    }

    #[test]
    fn each_error_carries_its_exit_status_and_hint_through_context() {
        use crate::failure::Context;
        let status = |f: Failure| (f.class().code(), f.hint());
        let look = Some(Hint::LookAtTheNodes);
        let unknown = crate::provision::UnknownStep {
            step: "mqq".into(),
            known: "mq".into(),
        };
        assert_eq!(status(unknown.into()), (exit::USAGE, None));
        let checks = crate::app::ChecksFailed {
            failed: 1,
            total: 9,
        };
        assert_eq!(
            status(checks.into()),
            (exit::GUEST, None),
            "hints are per check"
        );
        let stopped = crate::interrupt::Interrupted {
            signal: "SIGINT",
            during: "while the domains were created".into(),
        };
        let cut = Err::<(), _>(LifecycleError::from(stopped)).context("lab up");
        assert_eq!(status(cut.unwrap_err()), (exit::INTERRUPTED, None));
        let guest = crate::app::GuestProblem("controller: clock off".into());
        let guest = Err::<(), _>(guest).context("lab reset");
        assert_eq!(status(guest.unwrap_err()), (exit::GUEST, look));
        let missing = crate::app::NodeError::Missing {
            node: "compute1".into(),
            domain: "lab-x-compute1".into(),
            uri: "qemu:///system".into(),
        };
        assert_eq!(status(missing.into()), (exit::HOST, None));
        assert_eq!(status(lost().into()), (exit::HOST, None));
    }

    #[test]
    fn a_lost_libvirt_connection_prints_first_on_a_line_of_its_own_with_exit_status_3() {
        let first = "libvirt connection lost to qemu:///system while trying to start domain lab-x-controller (End of file while reading data: Input/output error): is libvirtd running? start it, then run the command again";
        let bare = Failure::from(LifecycleError::from(lost()));
        assert_eq!(format!("{bare:#}"), first);
        assert_eq!(exit_class(&bare).code(), exit::HOST);
        let kept = Failure::from(LifecycleError::NotRolledBack {
            error: Box::new(lost().into()),
            kept: "1 pool, 3 volumes".into(),
        });
        let text = format!("{kept:#}");
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                first,
                "(not rolled back, libvirt is out of reach: what this run made (1 pool, 3 volumes) stays; the next `lab up` goes on with it, `lab down` removes it)"
            ]
        );
        assert_eq!(exit_class(&kept).code(), exit::HOST);
    }
}

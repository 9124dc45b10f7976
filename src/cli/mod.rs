//! The command line: clap definitions and one module per verb that parses and delegates.

mod plan;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Build an OpenStack learning lab on this machine with libvirt.
///
/// A lab is a TOML file (see labs/reference.toml): an image, a NAT and an isolated network,
/// a controller and compute nodes with static addresses. `lab plan` shows what the lab will
/// create without touching libvirt.
#[derive(Debug, Parser)]
#[command(name = "lab", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Plan(plan::Args),
}

/// How guests run: `auto` picks kvm only when /dev/kvm opens and the CPU has vmx or svm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccelArg {
    Auto,
    Kvm,
    Tcg,
}

/// Exit status: 0 success, 2 usage or lab-file error, 3 host problem.
pub mod exit {
    pub const USAGE: u8 = 2;
    pub const HOST: u8 = 3;
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plan(args) => plan::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lab: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<crate::model::LoadError>().is_some() {
        exit::USAGE
    } else {
        exit::HOST
    }
}

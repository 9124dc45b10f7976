//! `lab`: build an OpenStack learning lab on a workstation by driving libvirt directly.
//!
//! The library holds everything; the `lab` binary only parses its command line
//! ([`cli`]) and delegates. See ARCHITECTURE.md for the map of modules.

pub mod app;
pub mod atomic;
pub mod build;
pub mod cache;
pub mod class;
pub mod cli;
pub mod clock;
pub mod doctor;
pub mod failure;
pub mod guest;
pub mod host;
pub mod image;
pub mod interrupt;
pub mod libvirt;
pub mod lifecycle;
pub mod model;
pub mod names;
pub mod plan;
pub mod profile_files;
pub mod progress;
pub mod provision;
pub mod render;
pub mod secrets;
pub mod shell;
pub mod ssh;
pub mod state;
pub mod units;

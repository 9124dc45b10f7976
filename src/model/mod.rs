//! The lab model: the lab file format ([`mod@file`]), its defaults ([`defaults`]), its validation
//! ([`validate`]) into the typed [`Lab`], and where a lab file is loaded from ([`load`]).

pub mod defaults;
pub mod file;
pub mod instance;
pub mod lab;
pub mod load;
/// The small value types, which live in the bottom module [`crate::units`]; re-exported here so
/// `model::units` paths keep working.
pub use crate::units;
pub mod validate;

pub use lab::{Lab, NetKind, Network, Nic, Node, Note, Role, Settings};
pub use load::{LoadError, Source};
pub use validate::{Problem, ValidationError};

/// The shipped Debian lab, loaded and validated: the unit tests' lab.
#[cfg(test)]
pub(crate) fn debian_lab() -> Lab {
    Source::resolve("openstack-debian12")
        .unwrap()
        .load(&crate::image::Catalogue::builtin())
        .unwrap()
        .0
}

//! Validation: a pure step from the defaulted [`LabFile`] to a [`Lab`], collecting every
//! problem with the key and the place in the file it comes from.

mod error;
mod names;
mod networks;
mod nics;
mod nodes;
mod settings;

use std::ops::Range;

use toml::Spanned;

pub use error::ValidationError;
pub(crate) use names::is_name;
use names::{is_domain, is_user};
pub use nodes::MAX_VCPUS;

use super::file::LabFile;
use super::lab::{Lab, Node, Note};
use super::units::ByteSize;
use crate::image::Catalogue;

/// One problem and where it is: the TOML key path and, when known, its bytes in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub error: ValidationError,
    pub key: String,
    pub span: Option<Range<usize>>,
}

/// Checks a defaulted lab file against the image catalogue.
/// Returns the typed lab and notes, or every problem found.
pub fn validate(file: &LabFile, catalogue: &Catalogue) -> Result<(Lab, Vec<Note>), Vec<Problem>> {
    let mut v = Validator::default();
    let name = v.name(&file.name, "name", ValidationError::BadLabName);
    let user = v.check(file.user.as_ref().expect("defaulted"), "user", |u| {
        is_user(u)
            .then(|| u.to_string())
            .ok_or(ValidationError::BadUser(u.to_string()))
    });
    let domain = v.check(file.domain.as_ref().expect("defaulted"), "domain", |d| {
        is_domain(d)
            .then(|| d.to_string())
            .ok_or(ValidationError::BadDomain(d.to_string()))
    });
    let image = v.check(&file.image, "image", |i| {
        catalogue
            .get(i)
            .cloned()
            .ok_or(ValidationError::UnknownImage {
                image: i.to_string(),
                known: catalogue.names().join(", "),
            })
    });
    let networks = v.networks(&file.networks);
    let provision = v.settings(file.provision.as_ref().expect("defaulted"));
    let nodes = v.nodes(file, &networks, image.as_ref().map(|i| i.virtual_size));
    match (name, user, domain, image, provision, v.problems.is_empty()) {
        (Some(name), Some(user), Some(domain), Some(image), Some(provision), true) => {
            let mut nodes = nodes;
            let notes = round_up_disks(&mut nodes, image.virtual_size);
            let lab = Lab {
                name,
                image,
                user,
                domain,
                networks,
                nodes,
                provision,
            };
            Ok((lab, notes))
        }
        _ => Err(v.problems),
    }
}

fn round_up_disks(nodes: &mut [Node], image_size: ByteSize) -> Vec<Note> {
    let mut notes = Vec::new();
    for node in nodes {
        if node.disk_requested < image_size {
            node.disk = image_size;
            notes.push(Note::DiskRoundedUp {
                node: node.name.clone(),
                requested: node.disk_requested.to_string(),
                image_size: image_size.to_string(),
            });
        }
    }
    notes
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
    /// Network names the file declares, valid or not: a nic on an invalid network is not
    /// reported again.
    declared: Vec<String>,
}

impl Validator {
    fn push(&mut self, error: ValidationError, key: String, span: Range<usize>) {
        let span = (!span.is_empty()).then_some(span);
        self.problems.push(Problem { error, key, span });
    }

    fn check<T, U>(
        &mut self,
        value: &Spanned<T>,
        key: &str,
        f: impl FnOnce(&T) -> Result<U, ValidationError>,
    ) -> Option<U> {
        match f(value.get_ref()) {
            Ok(u) => Some(u),
            Err(e) => {
                self.push(e, key.to_string(), value.span());
                None
            }
        }
    }

    fn parse<T: std::str::FromStr<Err = String>>(
        &mut self,
        value: &Spanned<String>,
        key: &str,
    ) -> Option<T> {
        self.check(value, key, |s| s.parse().map_err(ValidationError::BadValue))
    }

    fn name(
        &mut self,
        value: &Spanned<String>,
        key: &str,
        err: fn(String) -> ValidationError,
    ) -> Option<String> {
        self.check(value, key, |s| {
            is_name(s).then(|| s.clone()).ok_or(err(s.clone()))
        })
    }
}

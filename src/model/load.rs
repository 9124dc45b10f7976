//! Loading: where a lab file comes from (a path, or a name of a lab shipped in labs/) and
//! the chain parse -> defaults -> validate, with errors that point into the file.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::defaults;
use super::file::LabFile;
use super::lab::{Lab, Note};
use super::validate::{Problem, validate};
use crate::image::Catalogue;

/// Labs shipped with `lab`, usable by name from any directory.
pub const BUILTIN_LABS: [(&str, &str); 2] = [
    (
        "openstack-ocata",
        include_str!("../../labs/openstack-ocata.toml"),
    ),
    (
        "openstack-debian12",
        include_str!("../../labs/openstack-debian12.toml"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read lab file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no lab named {name:?}: give a path to a .toml file, or one of: {known}")]
    UnknownLab { name: String, known: String },
    #[error("{path}:{}: {message}", pos(.line_col))]
    Parse {
        path: PathBuf,
        line_col: Option<(usize, usize)>,
        message: String,
    },
    #[error("{}", Invalid { path, problems, source_text })]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
        source_text: String,
    },
}

impl crate::failure::Classify for LoadError {
    fn class(&self) -> crate::failure::ExitClass {
        crate::failure::ExitClass::Usage
    }
}

fn pos(lc: &Option<(usize, usize)>) -> String {
    lc.map_or("".into(), |(l, c)| format!("{l}:{c}:"))
        .trim_end_matches(':')
        .to_string()
}

/// Formats every problem as `file:line:col: key: message`.
struct Invalid<'a> {
    path: &'a PathBuf,
    problems: &'a [Problem],
    source_text: &'a str,
}

impl fmt::Display for Invalid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "{} has {n} problem{}:",
            self.path.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for (i, p) in self.problems.iter().enumerate() {
            let at = p
                .span
                .clone()
                .map(|s| line_col(self.source_text, s.start))
                .map_or(String::new(), |(l, c)| format!(":{l}:{c}"));
            write!(f, "  {}{at}: {}: {}", self.path.display(), p.key, p.error)?;
            if i + 1 < n {
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// A lab read from disk or the built-in set, and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    /// `arg` is a path to a TOML file, or the name of a lab in labs/ (built in).
    pub fn resolve(arg: &str) -> Result<Source, LoadError> {
        let path = Path::new(arg);
        if arg.ends_with(".toml") || arg.contains('/') || path.exists() {
            let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            return Ok(Source {
                path: path.to_path_buf(),
                text,
            });
        }
        BUILTIN_LABS
            .iter()
            .find(|(name, _)| *name == arg)
            .map(|(name, text)| Source {
                path: PathBuf::from(format!("labs/{name}.toml")),
                text: text.to_string(),
            })
            .ok_or_else(|| LoadError::UnknownLab {
                name: arg.to_string(),
                known: BUILTIN_LABS.map(|(n, _)| n).join(", "),
            })
    }

    /// Parse, default and validate.
    pub fn load(&self, catalogue: &Catalogue) -> Result<(Lab, Vec<Note>), LoadError> {
        let file = parse(&self.text).map_err(|(message, span)| LoadError::Parse {
            path: self.path.clone(),
            line_col: span.map(|s| line_col(&self.text, s.start)),
            message,
        })?;
        validate(&defaults::apply(file), catalogue).map_err(|problems| LoadError::Invalid {
            path: self.path.clone(),
            problems,
            source_text: self.text.clone(),
        })
    }
}

/// The TOML parse step alone: unknown keys and wrong types are reported here.
pub fn parse(text: &str) -> Result<LabFile, (String, Option<Range<usize>>)> {
    toml::from_str(text).map_err(|e| {
        let message = e.message().trim().to_string();
        (fix_hint(message), e.span())
    })
}

/// Adds what to do to the TOML parser's messages that lack it.
fn fix_hint(message: String) -> String {
    if message.starts_with("unknown field") {
        format!("{message}: remove or rename the key (see labs/reference.toml)")
    } else if message.starts_with("missing field") {
        format!("{message}: add the key (see labs/reference.toml)")
    } else if message.starts_with("unknown variant") {
        format!("{message}: use one of the listed values")
    } else {
        message
    }
}
